"""Turning the engine's answers into :mod:`stackctl.observed` facts, with the fewest requests.

What one ``observe`` costs (N groups, M members each):

- one label-filtered listing of the stack's containers; it already carries every
  container's labels (role, group, member, config and its hash), state and exit code,
  image and ``HostConfig.NetworkMode`` (the id of the owner a member joined);
- one inspect per owner, for what the listing lacks: the restart policy, the port
  bindings (also of a stopped owner), the pid and the start time;
- on a local engine with root, no request at all per member: the member's network
  namespace comes from this host's ``/proc`` and cgroup files
  (:mod:`stackctl.engine.namespaces`), and the namespace comparison is the exact test
  for a member stranded in a dead namespace. A member whose process cannot be found
  there is inspected instead;
- on a remote engine, or with ``inspect_all`` (``--refresh=full``), one inspect per
  member too: its start time stands in for the namespace, and its restart policy (which
  ``docker update`` can change and the listing does not show) is compared.

- one listing of the engine's networks and one of its volumes, whatever the size of the
  stack: the stack's own carry its label; an external one the spec names must be there.
  Which networks each owner is on comes with the owner's inspect.

- one image listing, filtered by the references the containers were created from: the
  ids those references name now, to compare with the ids the containers run (a tag that
  moved on is a replacement);
- a member whose labels record other in-place values (``mem_limit``, ``cpus``,
  ``pids_limit``, ``restart``) than the spec wants is inspected: ``docker update``
  changes the container but not its labels, so only the live values say whether the
  update was made.

So a no-op plan sends N + 5 requests on a local engine (a ping, the container listing,
the network and volume listings, the image listing, the owner inspects): a constant
plus one per group, where it used to send N(M+1) + 3.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Optional, Protocol

from stackctl import images as image_refs
from stackctl.engine import namespaces
from stackctl.observed import Observed, ObservedContainer, ObservedNetwork, ObservedVolume
from stackctl.errors import EngineError
from stackctl.resources import (
    LABEL_CONFIG,
    LABEL_GROUP,
    LABEL_HASH,
    LABEL_MEMBER,
    LABEL_NETWORK,
    LABEL_ROLE,
    LABEL_STACK,
    LABEL_VOLUME,
    Resource,
    Role,
)
from stackctl.spec.ports import PortBinding
from stackctl.spec.sysctls import name_problem

LOCK_ROLE = "lock"
_EXITED = re.compile(r"^(?:Exited|Restarting) \((-?\d+)\)")


class Reader(Protocol):
    """The two reads observe needs; a stdlib socket client or docker-py provides them."""

    def containers(self, stack: str) -> list[dict[str, Any]]:
        """Every container (running or not) labelled ``stackctl.stack=<stack>``."""

    def inspect(self, cid: str) -> Optional[dict[str, Any]]:
        """The container's inspect document, or None when it no longer exists."""

    def running(self) -> list[dict[str, Any]]:
        """Every running container of the engine, of any stack or none (the listing)."""

    def networks(self) -> list[dict[str, Any]]:
        """Every network on the engine (one request)."""

    def volumes(self) -> list[dict[str, Any]]:
        """Every volume on the engine (one request)."""

    def images(self, references: list[str]) -> list[dict[str, Any]]:
        """The image listing entries (Id, RepoTags, RepoDigests) of these references."""


# Reads a group's live sysctls when this host cannot enter the namespace: (stack, group,
# owner id, keys, helper image) -> values. A helper container does it (docker-py).
HelperRead = Callable[[str, str, str, list[str], str], dict[str, str]]


def nanos(stamp: str) -> int:
    """Docker's RFC 3339 timestamps (nanosecond fractions) -> integer nanoseconds."""
    if not stamp or stamp.startswith("0001-01-01"):
        return 0
    main, _, rest = stamp.partition(".")
    frac = "".join(ch for ch in rest if ch.isdigit())
    tz = rest[len(frac):] if rest else stamp[19:]
    if main.endswith("Z"):
        main, tz = main[:-1], "Z"
    base = datetime.fromisoformat(main + ("+00:00" if tz in ("Z", "") else tz))
    seconds = int(base.replace(tzinfo=base.tzinfo or timezone.utc).timestamp())
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9])


def _bindings(table: Any) -> list[PortBinding]:
    """``{"80/tcp": [{"HostIp": ..., "HostPort": ...}]}`` (requested or made) -> bindings."""
    out = []
    for key, bindings in (table or {}).items():
        container_port, _, protocol = key.partition("/")
        for b in bindings or []:
            if b.get("HostPort"):
                out.append(PortBinding(int(b["HostPort"]), int(container_port), protocol or "tcp",
                                       b.get("HostIp") or ""))
    return out


def _bound(bindings: Iterable[PortBinding]) -> set[tuple[int, int, str, str]]:
    """Bindings as the kernel holds them: no address means 0.0.0.0 (and "::", which Docker
    adds beside 0.0.0.0 where the host has IPv6), an IPv4-mapped IPv6 address its IPv4."""
    out = set()
    for b in bindings:
        ip = b.host_ip or "0.0.0.0"
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[len("::ffff:"):]
        out.add((b.host_port, b.container_port, b.protocol, ip))
    return {x for x in out if not (x[3] == "::" and x[:3] + ("0.0.0.0",) in out)}


def actual_of_inspect(role: Optional[Role], d: dict[str, Any]) -> dict[str, Any]:
    """The diffable attributes as the engine has them (see ObservedContainer.actual).

    An owner's ports are the bindings the engine really made (``NetworkSettings.Ports``)
    when it runs: a requested binding the engine widened (an address it could not use,
    so it bound every address) shows as what it is. When they agree with the requested
    ones, the requested spelling is kept, which is the spec's.
    """
    actual: dict[str, Any] = {"image": d["Config"].get("Image")}
    if role is Role.OWNER:
        requested = _bindings((d.get("HostConfig") or {}).get("PortBindings"))
        made = _bindings((d.get("NetworkSettings") or {}).get("Ports"))
        ports = requested
        if (d.get("State") or {}).get("Running") and _bound(made) != _bound(requested):
            # Spelt as the spec would spell it: 0.0.0.0 with "::" beside it is "every address".
            ports = [PortBinding(p, c, proto, "" if ip == "0.0.0.0" else ip)
                     for p, c, proto, ip in sorted(_bound(made))]
        actual["ports"] = sorted(str(p) for p in ports)
    return actual


def live_of_inspect(d: dict[str, Any]) -> dict[str, Any]:
    """The in-place attributes as the engine has them, spelled as member_config does."""
    hc = d.get("HostConfig") or {}
    nano = int(hc.get("NanoCpus") or 0)
    return {"mem_limit": int(hc.get("Memory") or 0) or None,
            "cpus": round(nano / 1e9, 9) if nano else None,
            "pids_limit": int(hc.get("PidsLimit") or 0) if int(hc.get("PidsLimit") or 0) > 0 else None}


def refuse_host_wide(r: Resource) -> None:
    """The last gate before sysctls are written. With /proc/sys unmasked a helper could
    write host-wide sysctls too: validation refuses them, and so does this, with the
    spec's whole name rule (not a prefix test: busybox's sysctl swaps '.' and '/', so
    ``net.//.fs.lease-break-time`` would write the host's ``fs.lease-break-time``)."""
    refused = [k for k in r.config["sysctls"] if name_problem(k) is not None]
    if refused:
        raise EngineError(f"{r.name}: refusing to write sysctls that are not namespaced "
                          "or not well-formed: " + ", ".join(refused))


def owner_problem(d: Optional[dict[str, Any]], stack: str, group: str, name: str) -> Optional[str]:
    """Why the container ``d`` (inspected by the id observe or create_owner returned) must
    not be joined as the owner of ``group``; None when it may.

    A helper or a new member joins the owner by id, never by name: a name can be taken
    by another container between plan and apply. The name is checked too, so that a
    step made for ``name`` refuses when the name has moved to another container (the
    plan no longer describes the engine).
    """
    if d is None:
        return f"the owner {name} no longer exists"
    labels = (d.get("Config") or {}).get("Labels") or {}
    short = str(d.get("Id", ""))[:12]
    if (labels.get(LABEL_STACK) != stack or labels.get(LABEL_ROLE) != Role.OWNER.value
            or labels.get(LABEL_GROUP) != group):
        return f"container {short} is not the owner of group {group!r} of stack {stack!r}"
    actual = str(d.get("Name", "")).lstrip("/")
    if actual != name:
        return (f"the owner {short} is now named {actual!r}, not {name!r}: the engine changed "
                "after the plan was made; nothing joins it (make a new plan)")
    state = d.get("State") or {}
    if not state.get("Running") or state.get("Paused"):
        return f"the owner {name} ({short}) is {state.get('Status', 'not running')}"
    return None


def _role(labels: Mapping[str, str]) -> Optional[Role]:
    try:
        return Role(labels.get(LABEL_ROLE, ""))
    except ValueError:
        return None


def _config(labels: Mapping[str, str]) -> Optional[dict[str, Any]]:
    try:
        return json.loads(labels[LABEL_CONFIG]) if LABEL_CONFIG in labels else None
    except ValueError:
        return None  # a mangled label: the hash still decides, the diff shows less


_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def _health_of_status(status: str) -> Optional[str]:
    """The health in a listing's Status text ("Up 5 minutes (healthy)")."""
    m = _HEALTH.search(status or "")
    return None if m is None else m.group(1).replace("health: ", "")


def owner_networks(d: dict[str, Any]) -> Optional[dict[str, tuple[str, ...]]]:
    """An inspect document -> {network name: DNS aliases}, the container's own short id
    (which the engine adds to every alias list) left out."""
    if ((d.get("HostConfig") or {}).get("NetworkMode") or "") == "none":
        return {}
    short = d["Id"][:12]
    found = ((d.get("NetworkSettings") or {}).get("Networks") or {})
    return {name: tuple(sorted(a for a in (ep or {}).get("Aliases") or () if a != short))
            for name, ep in found.items()}


def readiness(d: Optional[dict[str, Any]]) -> tuple[bool, bool, str]:
    """An inspect document -> (ready, hopeless, what it is now). Ready: running, and
    healthy where the container has a health check. Hopeless: gone, or stopped with no
    restart policy to bring it back. The text names the state and, for a health check
    that is not passing, the last line its last check printed."""
    if d is None:
        return False, True, "does not exist"
    state = d.get("State") or {}
    status = state.get("Status") or "unknown"
    if status != "running":
        policy = ((d.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
        text = f"exited (exit code {state.get('ExitCode', 0)})" if status == "exited" else status
        return False, status in ("exited", "dead") and policy == "no", text
    health = state.get("Health")
    if not health:
        return True, False, "running (no health check)"
    if health.get("Status") == "healthy":
        return True, False, "running, healthy"
    log = health.get("Log") or []
    last = ""
    if log:
        lines = (log[-1].get("Output") or "").strip().splitlines()
        last = lines[-1] if lines else f"exit code {log[-1].get('ExitCode')}"
    text = f"running, {health.get('Status') or 'unknown'}"
    return False, False, text + (f"; last health check: {last}" if last else
                                 "; no health check has finished yet")


def _joined(network_mode: str) -> Optional[str]:
    return network_mode.split(":", 1)[1] if network_mode.startswith("container:") else None


def from_inspect(d: dict[str, Any], local: bool) -> tuple[ObservedContainer, int]:
    """An inspect document -> the container's facts, and its pid as this host sees it (0
    when it is not running, or when ``local`` is false or the pid is not the container's)."""
    labels = d["Config"].get("Labels") or {}
    role = _role(labels)
    state = d.get("State") or {}
    host_config = d.get("HostConfig") or {}
    pid = int(state.get("Pid") or 0)
    # The namespace is read first and the pid checked after (namespaces.netns): a pid
    # reused between the check and the read cannot lend another process's namespace.
    netns = namespaces.netns(pid, d["Id"]) if local and pid and state.get("Running") else None
    if netns is None:
        pid = 0  # not a process this host can see as the container's
    c = ObservedContainer(
        id=d["Id"], name=d["Name"].lstrip("/"), role=role,
        group=labels.get(LABEL_GROUP, ""), member=labels.get(LABEL_MEMBER) or None,
        config_hash=labels.get(LABEL_HASH, ""), config=_config(labels),
        status=state.get("Status", "unknown"), exit_code=int(state.get("ExitCode") or 0),
        started_at=nanos(state.get("StartedAt", "")),
        network_container=_joined(host_config.get("NetworkMode") or ""), netns=netns,
        restart_policy=(host_config.get("RestartPolicy") or {}).get("Name") or "no",
        actual=actual_of_inspect(role, d),
        networks=owner_networks(d) if role is Role.OWNER else None,
        health=((state.get("Health") or {}).get("Status") or None),
        live=live_of_inspect(d) if role is Role.MEMBER else {}, image_id=d.get("Image") or "",
    )
    return c, pid


def from_listing(c: dict[str, Any], netns: Optional[str]) -> ObservedContainer:
    """A listing entry -> the facts it carries. Start time and restart policy are unknown
    (0 and None), so the planner compares namespaces and leaves the policy alone."""
    labels = c.get("Labels") or {}
    names = c.get("Names") or [c["Id"]]
    name = min(names, key=lambda n: n.count("/")).lstrip("/")  # links add "/other/alias"
    m = _EXITED.match(c.get("Status") or "")
    actual: dict[str, Any] = {}
    image = c.get("Image") or ""
    # The listing shows the image ID instead of the reference once the tag has moved on:
    # then the reference is simply not known here (inspect's Config.Image would have it).
    if image and image != c.get("ImageID") and not image.startswith("sha256:"):
        actual["image"] = image
    return ObservedContainer(
        id=c["Id"], name=name, role=_role(labels),
        group=labels.get(LABEL_GROUP, ""), member=labels.get(LABEL_MEMBER) or None,
        config_hash=labels.get(LABEL_HASH, ""), config=_config(labels),
        status=c.get("State") or "unknown", exit_code=int(m.group(1)) if m else 0,
        network_container=_joined((c.get("HostConfig") or {}).get("NetworkMode") or ""),
        netns=netns, restart_policy=None, actual=actual, image_id=c.get("ImageID") or "",
        health=_health_of_status(c.get("Status") or ""),
    )


def observe(reader: Reader, stack: str, sysctl_keys: Mapping[str, Iterable[str]], *,
            refresh: bool, inspect_all: bool, local_namespaces: bool,
            helper_read: Optional[HelperRead], helper_images: Mapping[str, str],
            expect: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Observed:
    """Every container of ``stack``, the ids its images' references name now and, with
    ``refresh``, the live sysctls per group.

    ``local_namespaces``: this process can read the engine's /proc (local engine, root).
    ``expect``: member address -> the in-place attributes the spec wants (see the module
    doc); a member whose labels say otherwise is inspected.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:  # overlap the two listings with the rest
        networks_f = pool.submit(reader.networks)
        volumes_f = pool.submit(reader.volumes)
        found = _containers(reader, stack, local_namespaces, inspect_all, expect or {})
        all_networks, all_volumes = networks_f.result(), volumes_f.result()
    containers = tuple(sorted((c for c, _ in found), key=lambda c: (c.group, c.name)))
    images = _images(reader, containers)
    live: dict[str, dict[str, str]] = {}
    if refresh:
        pids = {c.id: pid for c, pid in found}
        owners = {c.group: c for c in containers if c.role is Role.OWNER and c.running}
        live = _live_sysctls(stack, {g: (owners[g], pids.get(owners[g].id, 0), sorted(keys))
                                     for g, keys in sysctl_keys.items() if keys and g in owners},
                             helper_read, helper_images)
    return Observed(
        stack=stack, containers=containers, sysctls=live, refreshed=refresh,
        networks=networks_of(all_networks, stack), volumes=volumes_of(all_volumes, stack),
        network_names=frozenset(n.get("Name") or "" for n in all_networks),
        volume_names=frozenset(v.get("Name") or "" for v in all_volumes), images=images)


def networks_of(listed: Iterable[dict[str, Any]], stack: str) -> tuple[ObservedNetwork, ...]:
    """The stack's networks among the engine's: those carrying its label."""
    out = []
    for n in listed:
        labels = n.get("Labels") or {}
        if labels.get(LABEL_STACK) == stack and labels.get(LABEL_NETWORK):
            out.append(ObservedNetwork(id=n["Id"], name=n.get("Name") or "",
                                       spec_name=labels[LABEL_NETWORK],
                                       config_hash=labels.get(LABEL_HASH, ""),
                                       config=_config(labels)))
    return tuple(sorted(out, key=lambda n: (n.spec_name, n.name)))


def volumes_of(listed: Iterable[dict[str, Any]], stack: str) -> tuple[ObservedVolume, ...]:
    """The stack's volumes among the engine's: those carrying its label."""
    out = []
    for v in listed:
        labels = v.get("Labels") or {}
        if labels.get(LABEL_STACK) == stack and labels.get(LABEL_VOLUME):
            out.append(ObservedVolume(name=v.get("Name") or "", spec_name=labels[LABEL_VOLUME],
                                      config_hash=labels.get(LABEL_HASH, ""),
                                      config=_config(labels)))
    return tuple(sorted(out, key=lambda v: (v.spec_name, v.name)))


def _images(reader: Reader, containers: Iterable[ObservedContainer]) -> dict[str, str]:
    """reference -> id for the images the containers were created from: one listing."""
    refs = sorted({str(c.config["image"]) for c in containers
                   if c.config and c.config.get("image") and c.role in (Role.OWNER, Role.MEMBER)})
    if not refs:
        return {}
    return image_refs.resolve(reader.images([image_refs.familiar(r) for r in refs]), refs)


def _stale_labels(c: dict[str, Any], expect: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a listed member's labels record in-place values the spec does not want."""
    labels = c.get("Labels") or {}
    want = expect.get(f"{Role.MEMBER.value}.{labels.get(LABEL_GROUP, '')}.{labels.get(LABEL_MEMBER, '')}")
    if not want:
        return False
    config = _config(labels) or {}
    return any(config.get(k) != v for k, v in want.items())


def _containers(reader: Reader, stack: str, local_namespaces: bool, inspect_all: bool,
                expect: Mapping[str, Mapping[str, Any]]) -> list[tuple[ObservedContainer, int]]:
    """The stack's containers with their pids (0 when unknown here): see the module doc."""
    listed = [c for c in reader.containers(stack)
              if (c.get("Labels") or {}).get(LABEL_STACK) == stack
              and (c.get("Labels") or {}).get(LABEL_ROLE) != LOCK_ROLE]
    is_owner = {c["Id"]: (c.get("Labels") or {}).get(LABEL_ROLE) == Role.OWNER.value for c in listed}
    fast = local_namespaces and not inspect_all
    rest = [c for c in listed if not is_owner[c["Id"]]] if fast else []
    # Four threads: measured against 1-32 on a 2-core engine, the engine's own limit.
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = pool.map(reader.inspect, [c["Id"] for c in listed if is_owner[c["Id"]] or not fast])
        found = [from_inspect(d, local_namespaces) for d in pending if d is not None]
        # Any owner found running here shows where the members' cgroups are.
        known = next(((pid, c.id) for c, pid in found if pid), None)
        pids = namespaces.container_pids([c["Id"] for c in rest if c.get("State") == "running"], known)
        owner_ns = {c.id: c.netns for c, _ in found}
        unsure = []
        for c in rest:
            o = from_listing(c, namespaces.netns(pids[c["Id"]], c["Id"]) if c["Id"] in pids else None)
            # A running member needs its namespace and its owner's (when that owner still
            # exists) to be compared; if either is unknown here, an inspect decides.
            if (o.running and (o.netns is None or (o.network_container in owner_ns
                                                   and owner_ns[o.network_container] is None))
                    or _stale_labels(c, expect)):
                unsure.append(c["Id"])
            else:
                found.append((o, pids.get(c["Id"], 0)))
        found += [from_inspect(d, local_namespaces) for d in pool.map(reader.inspect, unsure)
                  if d is not None]
    return found


def _live_sysctls(stack: str, jobs: Mapping[str, tuple[ObservedContainer, int, list[str]]],
                  helper_read: Optional[HelperRead],
                  helper_images: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """group -> live values; ``jobs`` maps a group to (running owner, its pid here, keys).

    In this process through the owner's pid where there is one; else (remote engine, or
    the process could not be entered) by a helper container.
    """
    local = [(g, pid, owner.id, keys) for g, (owner, pid, keys) in jobs.items() if pid]
    read = namespaces.read_sysctls([(p, cid, k) for _, p, cid, k in local])
    live = {job[0]: v for job, v in zip(local, read) if v is not None}
    by_helper = [g for g in jobs if g not in live]
    if by_helper and helper_read is not None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            # The helper joins the owner by id (the name could belong to another by now).
            values = pool.map(lambda g: helper_read(stack, g, jobs[g][0].id, jobs[g][2],
                                                    helper_images.get(g, "")), by_helper)
            live.update(zip(by_helper, values))
    return live
