"""TOML spec files -> a validated :class:`Stack` (see :func:`load`)."""

from stackctl.spec.load import LoadedSpec, format_path, load
from stackctl.spec.model import Defaults, Group, Member, Stack, StackInfo

__all__ = ["Defaults", "Group", "LoadedSpec", "Member", "Stack", "StackInfo", "format_path", "load"]
