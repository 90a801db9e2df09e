"""The engine adapter: facts in, actions out. The only package that talks to Docker.

docker-py is imported only by :mod:`stackctl.engine.docker_engine`, and only when a
command first changes something; see :mod:`stackctl.engine.adapter` for why.
"""

from stackctl.engine.adapter import Engine, connect

__all__ = ["Engine", "connect"]
