"""A validated Stack -> the resources stackctl manages, with their labels and hashes.

A resource is what the planner diffs and the applier creates: a *network* (the stack's
default bridge and each declared network), a *volume* (each declared named volume), an
*owner* container holding a group's namespaces, a *helper* standing for the group's
sysctls as applied to the live namespace, and *member* containers joined to the owner.
``config`` holds the attributes that are diffed (normalized, JSON-able, so a plan file
round-trips them); ``extra`` holds what the applier needs but that never causes a change
by itself. An owner's networks live in ``extra``: joining or leaving one is done in place
(``docker network connect``), and a container's labels cannot follow such a change, so the
planner compares them with what the engine reports instead of with a label.

For networks and volumes, ``Resource.group`` holds the name the spec gives them
(``back``, ``pgdata``) and ``Resource.name`` the engine's name (``shop-back``).
"""

from __future__ import annotations

import enum
import hashlib
import json
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import attrs

from stackctl.member_config import member_config
from stackctl.spec.model import DEFAULT_NETWORK, Group, Stack
from stackctl.spec.units import parse_size

if TYPE_CHECKING:
    from stackctl.spec.envfile import EnvFile

LABEL_STACK = "stackctl.stack"
LABEL_GROUP = "stackctl.group"
LABEL_ROLE = "stackctl.role"
LABEL_MEMBER = "stackctl.member"
LABEL_HASH = "stackctl.config-hash"
LABEL_CONFIG = "stackctl.config"
LABEL_NETWORK = "stackctl.network"
LABEL_VOLUME = "stackctl.volume"


OWNER_RESTART = "unless-stopped"

# (group, member) -> that member's env files, in order (see stackctl.spec.envfile).
EnvFiles = Mapping[tuple[str, str], Sequence["EnvFile"]]


class Role(str, enum.Enum):
    OWNER = "owner"
    HELPER = "helper"
    MEMBER = "member"
    NETWORK = "network"
    VOLUME = "volume"


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
        """The labels that make a container (network, volume) this resource: ownership
        and state."""
        if self.role in (Role.NETWORK, Role.VOLUME):
            own = {k: str(v) for k, v in (self.config.get("labels") or {}).items()}
            return {**own, LABEL_STACK: stack, LABEL_ROLE: self.role.value,
                    f"stackctl.{self.role.value}": self.group, LABEL_HASH: self.config_hash,
                    LABEL_CONFIG: json.dumps(self.config, sort_keys=True, separators=(",", ":"))}
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


def network_name(stack: Stack, name: str) -> str:
    """The engine's name of the stack network ``name``: the stack's own name for the
    default network, ``<stack>-<name>`` for the others unless the spec names it."""
    net = stack.networks.get(name)
    if net is not None and net.name:
        return net.name
    return stack.name if name == DEFAULT_NETWORK else f"{stack.name}-{name}"


def volume_name(stack: Stack, name: str) -> str:
    """The engine's name of the named volume ``name``: ``<stack>-<name>`` unless the spec
    names it."""
    vol = stack.volumes.get(name)
    return vol.name if vol is not None and vol.name else f"{stack.name}-{name}"


def _networks(stack: Stack) -> list[Resource]:
    """The stack's networks that stackctl manages: "default" when a group uses it (or no
    group says otherwise), and every declared network that is not external."""
    used = {n for g in stack.groups.values() for n in g.networks}
    names = sorted(({DEFAULT_NETWORK} & used) | {n for n, net in stack.networks.items()
                                                  if not net.external})
    out = []
    for name in names:
        net = stack.networks.get(name)
        out.append(Resource(
            address=address(Role.NETWORK, name), role=Role.NETWORK, group=name, member=None,
            name=network_name(stack, name),
            config={"driver": "bridge", "internal": bool(net and net.internal),
                    "subnet": net.subnet if net else None},
        ))
    return out


def _volumes(stack: Stack) -> list[Resource]:
    """Every declared named volume that is not external."""
    return [Resource(
        address=address(Role.VOLUME, name), role=Role.VOLUME, group=name, member=None,
        name=volume_name(stack, name),
        config={"driver": vol.driver, "driver_opts": dict(sorted(vol.driver_opts.items())),
                "labels": dict(sorted(vol.labels.items()))},
    ) for name, vol in sorted(stack.volumes.items()) if not vol.external]


def _owner_settings(group: Group) -> dict[str, Any]:
    """The namespace settings a group declares, only those set: an owner created before
    these keys existed keeps its config hash."""
    out: dict[str, Any] = {}
    if group.hostname is not None:
        out["hostname"] = group.hostname
    for key in ("dns", "dns_search", "dns_opt", "extra_hosts"):
        if getattr(group, key):
            out[key] = list(getattr(group, key))
    if group.shm_size is not None:
        out["shm_size"] = parse_size(group.shm_size)
    if not group.networks:
        out["network_mode"] = "none"  # loopback only: joining a network later replaces
    return out


def _mount(stack: Stack, spec: str) -> tuple[str, Optional[str], Optional[str]]:
    """A member's volume string as the engine takes it, the address of the stack volume it
    mounts (None for a bind or an external volume), and an external volume's name."""
    source, sep, rest = spec.partition(":")
    if not sep or source.startswith("/") or source not in stack.volumes:
        return spec, None, None
    vol = stack.volumes[source]
    engine_spec = f"{volume_name(stack, source)}:{rest}"
    if vol.external:
        return engine_spec, None, volume_name(stack, source)
    return engine_spec, address(Role.VOLUME, source), None


def desired(stack: Stack, env_files: Optional[EnvFiles] = None) -> list[Resource]:
    """Every resource the stack declares: networks, volumes, then each group's owner,
    helper and members. Order between them is carried by ``depends_on``, not position.

    ``env_files`` are the members' env files as the loader read them (their digests join
    the members' configs); see :class:`stackctl.spec.LoadedSpec`.
    """
    files = env_files or {}
    out: list[Resource] = _networks(stack) + _volumes(stack)
    managed_networks = {r.group for r in out if r.role is Role.NETWORK}
    for gname, group in sorted(stack.groups.items()):
        owner_addr = address(Role.OWNER, gname)
        sysctls = dict(sorted(group.sysctls.items()))
        aliases = [gname] + [f"{m}.{gname}" for m in sorted(group.members)]
        # [engine network name, DNS aliases, address or None for an external network];
        # the first is the one the owner is created on.
        networks = [[network_name(stack, n), aliases,
                     address(Role.NETWORK, n) if n in managed_networks else None]
                    for n in group.networks]
        out.append(Resource(
            address=owner_addr, role=Role.OWNER, group=gname, member=None,
            name=container_name(stack.name, gname),
            config={
                "image": stack.owner_image(group),
                "command": list(stack.owner_command(group)),
                "ports": sorted(str(p) for p in group.ports),
                **_owner_settings(group),
            },
            # Sysctls are written natively at creation; later changes go through the
            # helper. The owner comes back after a host reboot, as the namespace must.
            extra={"sysctls": sysctls, "restart": OWNER_RESTART, "networks": networks},
            depends_on=tuple(str(n[2]) for n in networks if n[2]),
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
        # Every member of a group this one depends on must run (and be healthy, where it
        # has a health check) before this group's members start.
        waits = [[address(Role.MEMBER, dep, m), container_name(stack.name, dep, m)]
                 for dep in sorted(set(group.depends_on)) if dep in stack.groups and dep != gname
                 for m in sorted(stack.groups[dep].members)]
        after = [w[0] for w in waits]
        for mname, member in sorted(group.members.items()):
            mounts = [_mount(stack, v) for v in member.volumes]
            deps = [owner_addr] + ([joined_to] if joined_to != owner_addr else [])
            deps += [address(Role.MEMBER, gname, d) for d in sorted(member.depends_on)]
            deps += sorted({m[1] for m in mounts if m[1]}) + after
            extra: dict[str, Any] = {
                "owner": container_name(stack.name, gname), "pull_policy": member.pull_policy,
                # Where apply reads the env files' values again (checked against the
                # digests): values never enter a plan, a plan file or a label.
                "env_files": [{"path": e.absolute, "digest": e.digest}
                              for e in files.get((gname, mname), ())]}
            if waits:
                extra["waits_for"] = waits  # [address, container name] of each
            external = sorted({m[2] for m in mounts if m[2]})
            if external:
                extra["external_volumes"] = external
            out.append(Resource(
                address=address(Role.MEMBER, gname, mname), role=Role.MEMBER, group=gname,
                member=mname, name=container_name(stack.name, gname, mname),
                config={**member_config(member, [(e.path, e.digest)
                                                 for e in files.get((gname, mname), ())]),
                        # Named volumes as the engine knows them (<stack>-<name>).
                        "volumes": [m[0] for m in mounts]},
                extra=extra,
                depends_on=tuple(deps),
            ))
    return out


def in_place_expected(resources: list[Resource]) -> dict[str, dict[str, Any]]:
    """member address -> the in-place attributes the spec wants: what observe compares
    with a member's labels to know whether it must read the live values (inspect)."""
    from stackctl.member_config import IN_PLACE

    return {r.address: {k: r.config.get(k) for k in IN_PLACE}
            for r in resources if r.role is Role.MEMBER}
