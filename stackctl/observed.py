"""Facts read from the engine: what exists now. Pure data, no docker import.

The engine adapter fills these in (:func:`stackctl.engine.observe`); the planner only reads
them. Keeping facts separate from decisions (as pyinfra does) is what lets the planner be
tested with hand-written fixtures instead of a live engine.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

import attrs

from stackctl.resources import Role, address
from stackctl.spec.ports import PortBinding


@attrs.frozen
class ObservedContainer:
    """One container that carries this stack's label, as the engine reports it."""

    id: str
    name: str
    role: Optional[Role]
    group: str
    member: Optional[str] = None
    config_hash: str = ""
    config: Optional[dict[str, Any]] = None
    status: str = "running"  # created | running | paused | restarting | exited | dead
    exit_code: int = 0
    started_at: int = 0  # nanoseconds since the epoch; 0 when never started or not read
    network_container: Optional[str] = None  # id of the container whose netns it joined
    netns: Optional[str] = None  # namespace identity when it can be read, else None
    restart_policy: Optional[str] = None  # as the engine reports it ("no"); None: not read
    # Owners: engine network name -> the DNS aliases it has there (its short id left out);
    # None when not read.
    networks: Optional[dict[str, tuple[str, ...]]] = None
    # "starting" | "healthy" | "unhealthy" when the container has a health check, else None.
    health: Optional[str] = None
    # Attributes as the engine really has them, in the spelling of Resource.config, to
    # catch a container recreated by hand with copied labels (image, ports).
    actual: dict[str, Any] = attrs.field(factory=dict)
    # The in-place attributes (member_config.IN_PLACE but restart, which is
    # restart_policy) as the engine has them now; a key is present only when it was read
    # (inspect), since the labels keep the values the container was created with.
    live: dict[str, Any] = attrs.field(factory=dict)
    image_id: str = ""  # the id of the image it runs ("sha256:..."); "" when not read

    @property
    def address(self) -> str:
        if self.role is None:
            return f"unknown.{self.group}.{self.name}"
        return address(self.role, self.group, self.member)

    @property
    def running(self) -> bool:
        return self.status == "running"


@attrs.frozen
class ObservedNetwork:
    """A network labelled with this stack, as the engine reports it."""

    id: str
    name: str  # the engine's name
    spec_name: str  # the stackctl.network label: the name in the spec
    config_hash: str = ""
    config: Optional[dict[str, Any]] = None

    @property
    def address(self) -> str:
        return address(Role.NETWORK, self.spec_name)


@attrs.frozen
class ObservedVolume:
    """A volume labelled with this stack, as the engine reports it."""

    name: str  # the engine's name, which is also its id
    spec_name: str  # the stackctl.volume label
    config_hash: str = ""
    config: Optional[dict[str, Any]] = None

    @property
    def address(self) -> str:
        return address(Role.VOLUME, self.spec_name)


@attrs.frozen
class Observed:
    """Everything of one stack on the engine, plus the live sysctls of each namespace."""

    stack: str
    containers: tuple[ObservedContainer, ...] = ()
    # group -> live values of the sysctls the spec declares; a group is absent when its
    # owner is not running or live values were not read (--refresh=false).
    sysctls: dict[str, dict[str, str]] = attrs.field(factory=dict)
    refreshed: bool = True
    networks: tuple[ObservedNetwork, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()
    # Names of every network and volume on the engine, the stack's or not: an external
    # network or volume the spec names must be among them.
    network_names: frozenset[str] = frozenset()
    volume_names: frozenset[str] = frozenset()
    # image reference (as the containers' configs name it) -> the id it names on the
    # engine now; a reference absent here names no local image.
    images: dict[str, str] = attrs.field(factory=dict)

    def fingerprint(self) -> str:
        """A digest of the state a plan was made against, to refuse a stale plan."""
        # Saved plans observe with every container inspected (start times known) both
        # when made and when applied, so a member restarted in between is seen. Names
        # are in it: a saved plan's steps are checked against the names it was made
        # with, so a rename in between makes it stale rather than act on another
        # container. A running helper is another run's read, not this stack's state.
        rows = sorted(
            (c.id, c.name, c.config_hash, c.status, c.started_at, c.network_container or "",
             c.netns or "", c.image_id, json.dumps(c.live, sort_keys=True))
            for c in self.containers if not (c.role is Role.HELPER and c.running)
        )
        doc = {"containers": rows, "sysctls": {g: dict(sorted(v.items())) for g, v in sorted(self.sysctls.items())},
               "images": dict(sorted(self.images.items())),
               "networks": sorted((n.id, n.config_hash) for n in self.networks),
               "volumes": sorted((v.name, v.config_hash) for v in self.volumes),
               "joined": sorted((c.id, sorted((k, sorted(a)) for k, a in c.networks.items()))
                                for c in self.containers if c.networks is not None)}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


@attrs.frozen
class Held:
    """A host port in use now: the binding, and who holds it in words (for the port
    preflight, :mod:`stackctl.plan.preflight`)."""

    binding: PortBinding
    holder: str
    container_id: str = ""  # the container publishing it, when the engine says so
