"""A validated Stack -> the resources stackctl manages, with their labels and hashes.

A resource is what the planner diffs and the applier creates: an *owner* container
holding a group's namespaces, a *helper* standing for the group's sysctls as applied to
the live namespace, and *member* containers joined to the owner. ``config`` holds the
attributes that are diffed (normalized, JSON-able, so a plan file round-trips them);
``extra`` holds what the applier needs but that never causes a change by itself.
"""

from __future__ import annotations

import enum
import hashlib
import json
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import attrs

from stackctl.member_config import member_config
from stackctl.spec.model import Stack

if TYPE_CHECKING:
    from stackctl.spec.envfile import EnvFile

LABEL_STACK = "stackctl.stack"
LABEL_GROUP = "stackctl.group"
LABEL_ROLE = "stackctl.role"
LABEL_MEMBER = "stackctl.member"
LABEL_HASH = "stackctl.config-hash"
LABEL_CONFIG = "stackctl.config"

OWNER_RESTART = "unless-stopped"

# (group, member) -> that member's env files, in order (see stackctl.spec.envfile).
EnvFiles = Mapping[tuple[str, str], Sequence["EnvFile"]]


class Role(str, enum.Enum):
    OWNER = "owner"
    HELPER = "helper"
    MEMBER = "member"


def address(role: Role, group: str, member: Optional[str] = None) -> str:
    """``owner.<group>``, ``helper.<group>`` or ``member.<group>.<name>``."""
    return f"{role.value}.{group}" + (f".{member}" if member else "")


def container_name(stack: str, group: str, member: Optional[str] = None, role: Role = Role.OWNER) -> str:
    """Deterministic, readable container names: ``shop-edge``, ``shop-edge-web``."""
    if role is Role.HELPER:
        return f"{stack}-{group}-sysctl"
    return f"{stack}-{group}" + (f"-{member}" if member else "")


def config_hash(config: dict[str, Any]) -> str:
    """Stable hash of a resource's diffed attributes (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@attrs.frozen
class Resource:
    """One desired resource. ``depends_on`` lists addresses that must exist first."""

    address: str
    role: Role
    group: str
    member: Optional[str]
    name: str
    config: dict[str, Any]
    extra: dict[str, Any] = attrs.field(factory=dict)
    depends_on: tuple[str, ...] = ()

    @property
    def images(self) -> tuple[str, ...]:
        """The images this resource is made from (a helper's lives in ``extra``)."""
        return tuple(i for i in (self.config.get("image"), self.extra.get("image")) if i)

    @property
    def restart(self) -> str:
        """The restart policy the container must carry (members declare it)."""
        return str(self.config.get("restart") or self.extra.get("restart") or "no")

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    def labels(self, stack: str) -> dict[str, str]:
        """The labels that make a container this resource: ownership and state."""
        labels = {
            LABEL_STACK: stack,
            LABEL_GROUP: self.group,
            LABEL_ROLE: self.role.value,
            LABEL_HASH: self.config_hash,
            LABEL_CONFIG: json.dumps(self.config, sort_keys=True, separators=(",", ":")),
        }
        if self.member:
            labels[LABEL_MEMBER] = self.member
        return labels


def desired(stack: Stack, env_files: Optional[EnvFiles] = None) -> list[Resource]:
    """Every resource the stack declares, sorted by group then name; each group's owner
    comes first. Order between members is carried by ``depends_on``, not by position.

    ``env_files`` are the members' env files as the loader read them (their digests join
    the members' configs); see :class:`stackctl.spec.LoadedSpec`.
    """
    files = env_files or {}
    out: list[Resource] = []
    for gname, group in sorted(stack.groups.items()):
        owner_addr = address(Role.OWNER, gname)
        sysctls = dict(sorted(group.sysctls.items()))
        out.append(Resource(
            address=owner_addr, role=Role.OWNER, group=gname, member=None,
            name=container_name(stack.name, gname),
            config={
                "image": stack.owner_image(group),
                "command": list(stack.owner_command(group)),
                "ports": sorted(str(p) for p in group.ports),
            },
            # Sysctls are written natively at creation; later changes go through the
            # helper. The owner comes back after a host reboot, as the namespace must.
            extra={"sysctls": sysctls, "restart": OWNER_RESTART},
        ))
        joined_to = owner_addr
        if sysctls:
            joined_to = address(Role.HELPER, gname)
            out.append(Resource(
                address=joined_to, role=Role.HELPER, group=gname, member=None,
                name=container_name(stack.name, gname, role=Role.HELPER),
                config={"sysctls": sysctls},
                extra={"image": stack.helper_image(group), "owner": container_name(stack.name, gname)},
                depends_on=(owner_addr,),
            ))
        for mname, member in sorted(group.members.items()):
            deps = [owner_addr] + ([joined_to] if joined_to != owner_addr else [])
            deps += [address(Role.MEMBER, gname, d) for d in sorted(member.depends_on)]
            out.append(Resource(
                address=address(Role.MEMBER, gname, mname), role=Role.MEMBER, group=gname,
                member=mname, name=container_name(stack.name, gname, mname),
                config=member_config(member, [(e.path, e.digest) for e in files.get((gname, mname), ())]),
                extra={"owner": container_name(stack.name, gname), "pull_policy": member.pull_policy,
                       # Where apply reads the env files' values again (checked against
                       # the digests): values never enter a plan, a plan file or a label.
                       "env_files": [{"path": e.absolute, "digest": e.digest}
                                     for e in files.get((gname, mname), ())]},
                depends_on=tuple(deps),
            ))
    return out


def in_place_expected(resources: list[Resource]) -> dict[str, dict[str, Any]]:
    """member address -> the in-place attributes the spec wants: what observe compares
    with a member's labels to know whether it must read the live values (inspect)."""
    from stackctl.member_config import IN_PLACE

    return {r.address: {k: r.config.get(k) for k in IN_PLACE}
            for r in resources if r.role is Role.MEMBER}
