"""The only part of stackctl that imports ``docker``: facts in, actions out."""

from stackctl.engine.docker_engine import Engine, connect

__all__ = ["Engine", "connect"]
