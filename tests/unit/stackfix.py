"""Hand-built fixtures for the pure unit tests: specs, desired resources and the observed
state a Docker engine would report for them. No engine is involved.

``converged(...)`` mimics what ``stackctl.engine`` reports right after a successful apply:
one container per owner and member, labels carrying the config (JSON) and its hash, status
running, members started after their owner and joined to the owner's id, live sysctls as
the kernel prints them, normalized the way the engine adapter normalizes them.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any, Iterable, Optional

import attrs

from docker.utils import convert_port_bindings  # pure conversion; no engine involved

from stackctl.engine.facts import actual_of_inspect as _actual
from stackctl.engine.facts import live_of_inspect
from stackctl.observed import Observed, ObservedContainer, ObservedNetwork, ObservedVolume
from stackctl.resources import LABEL_CONFIG, LABEL_HASH, Resource, Role, desired
from stackctl.spec import load
from stackctl.spec.ports import parse_port
from stackctl.spec.sysctls import normalize_value

BASE_SPEC = """
[stack]
name = "shop"

[defaults]
owner_image = "pause:3.10"
helper_image = "busybox:1.36"

[groups.edge]
ports = ["8080:80", "127.0.0.1:9443:443/tcp"]
sysctls = { "net.core.somaxconn" = 1024, "net.ipv4.ip_local_port_range" = "1024 65000" }

[groups.edge.members.app]
image = "app:1"
command = ["serve", "--port", "80"]
environment = { TZ = "UTC" }

[groups.edge.members.web]
image = "nginx:1.27"
depends_on = ["app"]

[groups.db]
ports = ["5432:5432"]

[groups.db.members.pg]
image = "postgres:16"
"""

T0 = 1_700_000_000_000_000_000  # nanoseconds


def container_id(name: str, salt: str = "") -> str:
    """A 64-hex id, stable per name, like Docker's."""
    return hashlib.sha256(f"{name}{salt}".encode()).hexdigest()


def image_id(reference: str) -> str:
    """A stable fake image id for a reference, like the engine's sha256 ids."""
    return "sha256:" + hashlib.sha256(f"image {reference}".encode()).hexdigest() if reference else ""


def load_spec(tmp_path: Path, text: str, filename: str = "stack.toml") -> list[Resource]:
    """Write ``text`` to a file under ``tmp_path``, load it, and return the desired resources."""
    d = tmp_path / f"spec-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    d.mkdir(exist_ok=True)
    f = d / filename
    f.write_text(textwrap.dedent(text))
    return desired(load(f, env={}).stack)


def kernel_print(value: str) -> str:
    """How the kernel prints a sysctl: tab-separated fields, trailing newline."""
    return "\t".join(value.split()) + "\n"


def engine_actual(r: Resource) -> dict[str, Any]:
    """``ObservedContainer.actual`` as the adapter reads it back from ``inspect``: the image
    as created, and the owner's PortBindings as docker-py sent them (the daemon keeps them)."""
    ports: dict[str, list[Any]] = {}
    for text in r.config.get("ports", []):  # the mapping Engine.create_owner builds
        p = parse_port(text)
        ports.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            (p.host_ip, p.host_port) if p.host_ip else p.host_port)
    inspect = {"Config": {"Image": r.config.get("image")},
               "HostConfig": {"PortBindings": convert_port_bindings(ports)}}
    return _actual(r.role, inspect)


def observed_container(stack: str, r: Resource, *, started_at: int,
                       network_container: Optional[str] = None, **over: Any) -> ObservedContainer:
    """What the engine reports for a container created from ``r``: config from the labels."""
    labels = r.labels(stack)
    networks = None
    if r.role is Role.OWNER:
        networks = {} if r.config.get("network_mode") == "none" else {
            name: tuple(sorted(aliases)) for name, aliases, _ in r.extra.get("networks", [])}
    live = {}
    if r.role is Role.MEMBER:  # what create_member sends, as inspect reports it back
        cpus = r.config.get("cpus")
        live = live_of_inspect({"HostConfig": {
            "Memory": r.config.get("mem_limit") or 0,
            "NanoCpus": int(round(cpus * 1e9)) if cpus else 0,
            "PidsLimit": r.config.get("pids_limit") or 0}})
    fields = dict(
        id=container_id(r.name), name=r.name, role=r.role, group=r.group, member=r.member,
        config_hash=labels[LABEL_HASH], config=json.loads(labels[LABEL_CONFIG]),
        status="running", exit_code=0, started_at=started_at,
        network_container=network_container, restart_policy=r.restart,
        actual=engine_actual(r), networks=networks, live=live,
        image_id=image_id(r.config.get("image", "")),
    )
    fields.update(over)
    return ObservedContainer(**fields)


def converged(resources: Iterable[Resource], stack: str = "shop") -> Observed:
    """The observed state right after ``resources`` were applied successfully."""
    resources = list(resources)
    containers: list[ObservedContainer] = []
    sysctls: dict[str, dict[str, str]] = {}
    owners: dict[str, str] = {}
    networks: list[ObservedNetwork] = []
    volumes: list[ObservedVolume] = []
    external: set[str] = set()
    t = T0
    for r in resources:  # owners come first in desired() order
        t += 1_000_000
        labels = r.labels(stack)
        if r.role is Role.NETWORK:
            networks.append(ObservedNetwork(id=container_id(r.name, "network"), name=r.name,
                                            spec_name=r.group, config_hash=labels[LABEL_HASH],
                                            config=json.loads(labels[LABEL_CONFIG])))
        elif r.role is Role.VOLUME:
            volumes.append(ObservedVolume(name=r.name, spec_name=r.group,
                                          config_hash=labels[LABEL_HASH],
                                          config=json.loads(labels[LABEL_CONFIG])))
        external |= {n for n, _, managed in r.extra.get("networks", []) if managed is None}
        external |= set(r.extra.get("external_volumes", []))
        if r.role is Role.OWNER:
            c = observed_container(stack, r, started_at=t, netns=f"net:[{4026530000 + len(owners)}]")
            owners[r.group] = c.id
            containers.append(c)
        elif r.role is Role.HELPER:
            # The helper runs and is removed; what remains is the live values it wrote.
            sysctls[r.group] = {k: normalize_value(kernel_print(v)) for k, v in r.config["sysctls"].items()}
    owner_netns = {c.group: c.netns for c in containers}
    for r in resources:
        if r.role is Role.MEMBER:
            t += 1_000_000
            containers.append(observed_container(
                stack, r, started_at=t, network_container=owners.get(r.group),
                netns=owner_netns.get(r.group)))
    images = {c.config["image"]: c.image_id for c in containers if c.config and c.image_id}
    return Observed(stack=stack, containers=tuple(containers), sysctls=sysctls,
                    networks=tuple(networks), volumes=tuple(volumes),
                    network_names=frozenset({n.name for n in networks} | external | {"bridge"}),
                    volume_names=frozenset({v.name for v in volumes} | external), images=images)


# ----------------------------------------------------------------- perturbations
def find(obs: Observed, addr: str) -> ObservedContainer:
    return next(c for c in obs.containers if c.address == addr)


def evolve(obs: Observed, addr: str, **changes: Any) -> Observed:
    """``obs`` with the container at ``addr`` changed."""
    return attrs.evolve(obs, containers=tuple(
        attrs.evolve(c, **changes) if c.address == addr else c for c in obs.containers))


def drop(obs: Observed, addr: str) -> Observed:
    return attrs.evolve(obs, containers=tuple(c for c in obs.containers if c.address != addr))


def add(obs: Observed, *containers: ObservedContainer) -> Observed:
    return attrs.evolve(obs, containers=obs.containers + tuple(containers))


def live(obs: Observed, group: str, values: Optional[dict[str, str]]) -> Observed:
    """Replace (or, with None, forget) the live sysctls read for ``group``."""
    sysctls = dict(obs.sysctls)
    if values is None:
        sysctls.pop(group, None)
    else:
        sysctls[group] = dict(values)
    return attrs.evolve(obs, sysctls=sysctls)
