"""The spec as validated, typed data: what an operator declared, nothing derived.

These attrs classes are structured from TOML by the one converter in
:mod:`stackctl.spec.converter`; everything downstream (resources, planner) reads them.
Field names are the TOML keys.
"""

from __future__ import annotations

from typing import Literal, Optional

import attrs

from stackctl.spec.ports import PortBinding

DEFAULT_OWNER_IMAGE = "registry.k8s.io/pause:3.10"
DEFAULT_HELPER_IMAGE = "busybox:1.36"

Restart = Literal["no", "always", "unless-stopped", "on-failure"]
RESTART_POLICIES: tuple[str, ...] = ("no", "always", "unless-stopped", "on-failure")

# Keys that configure the shared namespace: on a member they are refused with guidance.
GROUP_ONLY_KEYS = ("ports", "sysctls", "hostname", "dns", "network_mode", "mac_address")


@attrs.frozen
class StackInfo:
    """The ``[stack]`` table: the name that scopes every label and container name."""

    name: str


@attrs.frozen
class Defaults:
    """The ``[defaults]`` table: images used by groups that do not override them."""

    owner_image: str = DEFAULT_OWNER_IMAGE
    owner_command: tuple[str, ...] = ()
    helper_image: str = DEFAULT_HELPER_IMAGE


@attrs.frozen
class Member:
    """An app container that joins its group's network and IPC namespaces."""

    image: str
    command: Optional[tuple[str, ...]] = None
    entrypoint: Optional[tuple[str, ...]] = None
    environment: dict[str, str] = attrs.field(factory=dict)
    volumes: tuple[str, ...] = ()
    restart: Restart = "no"
    init: bool = False
    depends_on: tuple[str, ...] = ()


@attrs.frozen
class Group:
    """One namespace group: one owner, its ports and sysctls, and its members."""

    ports: tuple[PortBinding, ...] = ()
    sysctls: dict[str, str] = attrs.field(factory=dict)
    owner_image: Optional[str] = None
    owner_command: Optional[tuple[str, ...]] = None
    helper_image: Optional[str] = None
    members: dict[str, Member] = attrs.field(factory=dict)


@attrs.frozen
class Stack:
    """A whole stack: one spec file, or a directory of them merged."""

    stack: StackInfo
    defaults: Defaults = Defaults()
    groups: dict[str, Group] = attrs.field(factory=dict)

    @property
    def name(self) -> str:
        return self.stack.name

    def owner_image(self, group: Group) -> str:
        return group.owner_image or self.defaults.owner_image

    def owner_command(self, group: Group) -> tuple[str, ...]:
        if group.owner_command is not None:
            return group.owner_command
        return self.defaults.owner_command

    def helper_image(self, group: Group) -> str:
        return group.helper_image or self.defaults.helper_image
