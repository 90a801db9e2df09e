"""The spec as validated, typed data: what an operator declared, nothing derived.

These attrs classes are structured from TOML by the one converter in
:mod:`stackctl.spec.converter`; everything downstream (resources, planner) reads them.
Field names are the TOML keys. Each field's metadata carries the description and an
example that the error hints, the JSON Schema (:mod:`stackctl.spec.schema`) and the
reference in docs/spec.md are built from, so the three cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, get_args

import attrs

from stackctl.spec.ports import PortBinding

DEFAULT_OWNER_IMAGE = "registry.k8s.io/pause:3.10"
DEFAULT_HELPER_IMAGE = "busybox:1.36"

Restart = Literal["no", "always", "unless-stopped", "on-failure"]
RESTART_POLICIES: tuple[str, ...] = get_args(Restart)


def doc(description: str, example: Any) -> dict[str, Any]:
    """Field metadata: what the key is for, and a value that would be valid there."""
    return {"description": description, "example": example}


# Keys that configure the shared network namespace, so a member may not set them. Each
# maps to (why it is refused, how to fix it). Only ports and sysctls exist on a group;
# the others are refused outright since a member must not have them either, and the
# group's owner does not set them yet.
GROUP_ONLY_KEYS: dict[str, tuple[str, str]] = {
    "ports": (
        "members share the owner's network namespace, where ports are published",
        "move it to the group table [groups.{group}]",
    ),
    "sysctls": (
        "a member's sysctls would silently rewrite the namespace the whole group shares",
        "move it to the group table [groups.{group}]",
    ),
    "hostname": (
        "members share the owner's network namespace, and Docker refuses it on a "
        "container that joins another's network",
        "remove it: a group does not set a hostname yet",
    ),
    "dns": (
        "members share the owner's network namespace, and Docker refuses it on a "
        "container that joins another's network",
        "remove it: a group does not set DNS servers yet",
    ),
    "mac_address": (
        "members share the owner's network namespace, and Docker refuses it on a "
        "container that joins another's network",
        "remove it: a group does not set a MAC address yet",
    ),
    "network_mode": (
        "every member joins its group's network namespace",
        "remove it: to use another network namespace, put the member in another group",
    ),
}

# Keys an operator might reasonably try on a group that stackctl does not support there.
GROUP_UNSUPPORTED_KEYS: dict[str, tuple[str, str]] = {
    "hostname": ("a group does not set a hostname yet", "remove it"),
    "dns": ("a group does not set DNS servers yet", "remove it"),
    "mac_address": ("a group does not set a MAC address yet", "remove it"),
    "network_mode": (
        "a group always owns its own network namespace",
        "remove it; members join the group's namespace",
    ),
}


@attrs.frozen
class StackInfo:
    """The ``[stack]`` table: the name that scopes every label and container name."""

    name: str = attrs.field(metadata=doc(
        "The stack's name: prefixes every container name and scopes every label, so "
        "two stacks on one host never touch each other's containers. 1 to 40 of a-z, "
        "0-9, '_' and '-', starting with a letter or digit.", "shop"))


@attrs.frozen
class Defaults:
    """The ``[defaults]`` table: images used by groups that do not override them."""

    owner_image: str = attrs.field(default=DEFAULT_OWNER_IMAGE, metadata=doc(
        "Image of each group's owner, the small container that holds the namespace.",
        "registry.k8s.io/pause:3.10"))
    owner_command: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Command for owner images that need one to stay running; empty means the "
        "image's own.", ["sleep", "2147483647"]))
    helper_image: str = attrs.field(default=DEFAULT_HELPER_IMAGE, metadata=doc(
        "Image of the short-lived helper that writes sysctls into a live namespace; it "
        "must contain a `sysctl` program (busybox has one).", "busybox:1.36"))


@attrs.frozen
class Member:
    """An app container that joins its group's network and IPC namespaces."""

    image: str = attrs.field(metadata=doc("The container image (required).", "nginx:1.27"))
    command: Optional[tuple[str, ...]] = attrs.field(default=None, metadata=doc(
        "Arguments replacing the image's CMD; omit it to keep the image's.",
        ["nginx", "-g", "daemon off;"]))
    entrypoint: Optional[tuple[str, ...]] = attrs.field(default=None, metadata=doc(
        "Replaces the image's ENTRYPOINT; omit it to keep the image's.",
        ["/docker-entrypoint.sh"]))
    environment: dict[str, str] = attrs.field(factory=dict, metadata=doc(
        "Environment variables. Values may be strings, numbers or booleans; they are "
        "passed as text.", {"TZ": "UTC"}))
    volumes: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Mounts as 'SOURCE:/container/path[:MODE]': SOURCE is an absolute host path or "
        "a named volume, MODE a comma-separated list such as 'ro'.",
        ["/srv/www:/usr/share/nginx/html:ro", "cache:/var/cache/nginx"]))
    restart: Restart = attrs.field(default="no", metadata=doc(
        "Docker restart policy: no, always, unless-stopped or on-failure.",
        "unless-stopped"))
    init: bool = attrs.field(default=False, metadata=doc(
        "Run Docker's init as PID 1 (docker run --init), so zombies are reaped and "
        "signals forwarded.", True))
    depends_on: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Members of the same group that must be created first.", ["app"]))


@attrs.frozen
class Group:
    """One namespace group: one owner, its ports and sysctls, and its members."""

    ports: tuple[PortBinding, ...] = attrs.field(default=(), metadata=doc(
        "Ports published on the owner, as '[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]' "
        "(protocol tcp, udp or sctp; tcp by default).",
        ["8080:80", "127.0.0.1:9443:443/tcp", "5353:53/udp"]))
    sysctls: dict[str, str] = attrs.field(factory=dict, metadata=doc(
        "Namespaced kernel settings of the group: net.*, kernel.shm*, kernel.msg*, "
        "kernel.sem and fs.mqueue.*. Values are integers or strings; several values go "
        "in one space-separated string.",
        {"net.core.somaxconn": 1024, "net.ipv4.ip_local_port_range": "1024 65000"}))
    owner_image: Optional[str] = attrs.field(default=None, metadata=doc(
        "Overrides defaults.owner_image for this group.", "registry.k8s.io/pause:3.10"))
    owner_command: Optional[tuple[str, ...]] = attrs.field(default=None, metadata=doc(
        "Overrides defaults.owner_command for this group.", ["sleep", "2147483647"]))
    helper_image: Optional[str] = attrs.field(default=None, metadata=doc(
        "Overrides defaults.helper_image for this group.", "busybox:1.36"))
    members: dict[str, Member] = attrs.field(factory=dict, metadata=doc(
        "The group's app containers, by name: [groups.NAME.members.MEMBER].",
        {"web": {"image": "nginx:1.27"}}))


@attrs.frozen
class Stack:
    """A whole stack: one spec file, or a directory of them merged."""

    stack: StackInfo = attrs.field(metadata=doc(
        "The [stack] table; exactly one file of a stack has it.", {"name": "shop"}))
    defaults: Defaults = attrs.field(default=Defaults(), metadata=doc(
        "Images used by every group that does not override them.",
        {"owner_image": "registry.k8s.io/pause:3.10"}))
    groups: dict[str, Group] = attrs.field(factory=dict, metadata=doc(
        "Namespace groups, by name: [groups.NAME]. Each is one owner container holding "
        "a network and IPC namespace, and the members that join it.",
        {"edge": {"ports": ["8080:80"]}}))

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
