"""The engine adapter the CLI talks to: facts from the cheapest source, actions via docker-py.

:class:`Engine` is a thin seam with two halves:

- *facts* (:meth:`Engine.observe`): through :mod:`stackctl.engine.socket_api` on a local
  unix socket, otherwise through docker-py; plus, on a local engine with root, this host's
  ``/proc`` (:mod:`stackctl.engine.namespaces`) for namespaces and live sysctls;
- *actions* (create, write sysctls, restart, update, remove, lock): through
  :class:`~stackctl.engine.docker_engine.DockerActions`, created on first use. A
  ``stackctl plan`` against a local engine therefore never imports docker-py (~110 ms).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional

from stackctl.engine import facts, host_ports, namespaces
from stackctl.engine.socket_api import ApiError, SocketApi
from stackctl.errors import EngineError
from stackctl.observed import Held, Observed
from stackctl.resources import LABEL_STACK, Resource
from stackctl.spec.ports import PortBinding
from stackctl.spec import envfile

if TYPE_CHECKING:
    from stackctl.engine.docker_engine import DockerActions, StackLock

DEFAULT_HOST = "unix:///var/run/docker.sock"


def connect(timeout: int = 60) -> "Engine":
    """Connect to the engine at DOCKER_HOST (default: the local unix socket) and ping it."""
    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if host.startswith("unix://"):
        api = SocketApi(host[len("unix://"):], timeout=timeout)
        api.ping()
        return Engine(host, _SocketReader(api), local=True)
    from stackctl.engine.docker_engine import DockerActions, DockerPyReader, connect_sdk

    client = connect_sdk(host, timeout=timeout)
    return Engine(host, DockerPyReader(client), local=False, actions=DockerActions(client))


class _SocketReader:
    """:class:`facts.Reader` over the stdlib socket client."""

    def __init__(self, api: SocketApi) -> None:
        self.api = api

    def containers(self, stack: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [f"{LABEL_STACK}={stack}"]})
        try:
            listed = self.api.get("/containers/json", {"all": "1", "filters": filters})
        except ApiError as exc:
            raise EngineError(f"cannot list the containers of stack {stack!r}: {exc}") from None
        return list(listed or [])

    def running(self) -> list[dict[str, Any]]:
        try:
            return list(self.api.get("/containers/json") or [])
        except ApiError as exc:
            raise EngineError(f"cannot list the engine's containers: {exc}") from None

    def events(self, filters: Mapping[str, list[str]]) -> Iterator[dict[str, Any]]:
        return self.api.stream("/events", {"filters": json.dumps(filters)})

    def ping(self) -> None:
        self.api.ping()

    def inspect(self, cid: str) -> Optional[dict[str, Any]]:
        try:
            return self.api.get(f"/containers/{cid}/json")
        except ApiError as exc:
            if exc.status == 404:
                return None  # removed between list and inspect
            raise EngineError(f"{cid[:12]}: inspect failed: {exc}") from None

    def networks(self) -> list[dict[str, Any]]:
        try:
            return list(self.api.get("/networks") or [])
        except ApiError as exc:
            raise EngineError(f"cannot list the engine's networks: {exc}") from None

    def volumes(self) -> list[dict[str, Any]]:
        try:
            return list((self.api.get("/volumes") or {}).get("Volumes") or [])
        except ApiError as exc:
            raise EngineError(f"cannot list the engine's volumes: {exc}") from None

    def images(self, references: list[str]) -> list[dict[str, Any]]:
        filters = json.dumps({"reference": references})
        try:
            return list(self.api.get("/images/json", {"filters": filters}) or [])
        except ApiError as exc:
            raise EngineError(f"cannot list the images {', '.join(references)}: {exc}") from None


class Engine:
    """A connected engine. Thread-safe: the applier calls it from worker threads."""

    def __init__(self, host: str, reader: facts.Reader, local: bool,
                 actions: "Optional[DockerActions]" = None) -> None:
        self.host = host
        self.reader = reader
        self.local = local  # the engine runs on this host (its unix socket)
        # Whether this process can read the engine's containers' namespaces itself.
        self.local_namespaces = local and namespaces.available()
        self._actions = actions
        self._actions_lock = threading.Lock()

    @property
    def actions(self) -> "DockerActions":
        """docker-py, imported and connected on the first action of this run."""
        with self._actions_lock:
            if self._actions is None:
                from stackctl.engine.docker_engine import DockerActions, connect_sdk

                self._actions = DockerActions(connect_sdk(self.host, ping=False))
            return self._actions

    # ----------------------------------------------------------------- facts
    def observe(self, stack: str, sysctl_keys: Mapping[str, Iterable[str]], refresh: bool = True,
                helper_images: Optional[Mapping[str, str]] = None,
                inspect_all: bool = False,
                expect: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Observed:
        """Every container of ``stack`` and, with ``refresh``, the live sysctls per group.

        ``inspect_all`` also inspects every member (``--refresh=full``): only that sees a
        member's restart policy changed with ``docker update``. ``expect``: the in-place
        attributes the spec wants per member (:func:`stackctl.resources.in_place_expected`).
        """
        return facts.observe(
            self.reader, stack, sysctl_keys, refresh=refresh, inspect_all=inspect_all,
            local_namespaces=self.local_namespaces,
            helper_read=lambda *a: self.actions.read_by_helper(*a),
            helper_images=helper_images or {}, expect=expect)

    def held_ports(self, wanted: Iterable[tuple[int, str]]) -> list[Held]:
        """Who holds the wanted (host port, protocol)s now: ports the engine's running
        containers publish (any stack or none), and on a local engine this host's
        sockets. For the port preflight (:mod:`stackctl.plan.preflight`)."""
        wanted = set(wanted)
        if not wanted:
            return []
        out = []
        for c in self.reader.running():
            name = min(c.get("Names") or [c["Id"]], key=lambda n: n.count("/")).lstrip("/")
            for p in c.get("Ports") or []:
                proto = p.get("Type") or "tcp"
                if p.get("PublicPort") and (int(p["PublicPort"]), proto) in wanted:
                    ip = p.get("IP") or ""
                    out.append(Held(PortBinding(int(p["PublicPort"]), int(p.get("PrivatePort") or 0),
                                                proto, "" if ip in ("", "0.0.0.0") else ip),
                                    f"published by container {name} ({c['Id'][:12]})", c["Id"]))
        if self.local:
            out += host_ports.held(wanted)
        return out

    def wait_ready(self, names: Mapping[str, str], timeout: float,
                   stop: Optional[threading.Event] = None, interval: float = 0.5) -> dict[str, str]:
        """Wait until every container in ``names`` (address -> container name) runs, and is
        healthy where it has a health check; give up on one that cannot get there, and on
        all at ``timeout`` seconds. Returns address -> state of each that is not ready."""
        deadline = time.monotonic() + timeout
        pending = dict(names)
        states: dict[str, str] = {}
        while True:
            for addr, name in list(pending.items()):
                ready, hopeless, states[addr] = facts.readiness(self.reader.inspect(name))
                if ready:
                    del pending[addr]
                    states.pop(addr)
                elif hopeless:
                    del pending[addr]
            if not pending or time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                return states
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    def events(self, filters: Mapping[str, list[str]]) -> Iterator[dict[str, Any]]:
        """The engine's event stream, filtered (``/events``): one dict per event, until the
        engine closes it. For the watch agent; a command never follows events."""
        return self.reader.events(filters)  # type: ignore[attr-defined]

    def ping(self) -> None:
        """Raise EngineUnavailable unless the engine answers."""
        self.reader.ping()  # type: ignore[attr-defined]

    # --------------------------------------------------------------- actions
    def _joinable_owner(self, stack: str, r: Resource, owner: str) -> dict[str, Any]:
        """The inspect document of the owner ``r`` is about to join, by the id observe or
        create_owner returned; refuses the step when that id is not (or no longer
        named as) this group's owner. One inspect per joining step."""
        d = self.reader.inspect(owner)
        problem = facts.owner_problem(d, stack, r.group, r.extra["owner"])
        if problem:
            raise EngineError(f"{r.name}: {problem}")
        assert d is not None
        return d

    def write_sysctls(self, stack: str, r: Resource, owner: str,
                      skip_if_live: bool = False) -> dict[str, str]:
        """Make the namespaces of the owner with id ``owner`` hold the group's sysctls;
        returns the live values. ``skip_if_live``: the owner was just created or
        restarted, so its namespace already has the values Docker set at creation, and
        reading them back is enough when they are there (never for --replace)."""
        facts.refuse_host_wide(r)
        d = self._joinable_owner(stack, r, owner)
        sysctls: dict[str, str] = r.config["sysctls"]
        if skip_if_live and self.local_namespaces:
            # On a local engine, reading them back costs well under a millisecond where a
            # helper run costs ~120 ms.
            pid = facts.from_inspect(d, local=True)[1]
            if pid:
                live = namespaces.read_sysctls([(pid, d["Id"], sorted(sysctls))])[0]
                if live == sysctls:
                    return live
        return self.actions.write_sysctls(stack, r, d["Id"])

    def missing_images(self, images: Iterable[str], no_pull: Iterable[str] = ()) -> dict[str, str]:
        """Images neither on the engine nor pullable, with the cause; ``no_pull`` are
        only looked for (pull_policy never)."""
        return self.actions.missing_images(images, no_pull)

    def pull(self, images: Iterable[str], only_missing: bool = False) -> dict[str, str]:
        """Pull each image: image -> "pulled", "present" (only_missing) or
        "failed: CAUSE"."""
        return self.actions.pull(images, only_missing)

    def create_owner(self, stack: str, r: Resource) -> str:
        return self.actions.create_owner(stack, r)

    def create_member(self, stack: str, r: Resource, owner: str) -> str:
        """Create the member joined to the owner with id ``owner`` (checked first)."""
        d = self._joinable_owner(stack, r, owner)
        # The env files' values are read here, at the last moment, and checked against
        # the digests the plan was made with; they go to the engine and nowhere else.
        env = envfile.environment(r.extra.get("env_files") or ())
        return self.actions.create_member(stack, r, d["Id"], env)

    def restart(self, stack: str, cid: str, name: str) -> None:
        self.actions.restart(stack, cid, name)

    def update(self, stack: str, cid: str, name: str, changes: Mapping[str, Any]) -> None:
        self.actions.update(stack, cid, name, changes)

    def remove(self, stack: str, cid: str, name: str) -> None:
        self.actions.remove(stack, cid, name)

    def create_network(self, stack: str, r: Resource) -> str:
        return self.actions.create_network(stack, r)

    def remove_network(self, stack: str, nid: str, name: str) -> None:
        self.actions.remove_network(stack, nid, name)

    def connect(self, stack: str, cid: str, name: str, network: str, aliases: list[str]) -> None:
        self.actions.connect(stack, cid, name, network, aliases)

    def disconnect(self, stack: str, cid: str, name: str, network: str) -> None:
        self.actions.disconnect(stack, cid, name, network)

    def create_volume(self, stack: str, r: Resource) -> str:
        return self.actions.create_volume(stack, r)

    def remove_volume(self, stack: str, name: str) -> None:
        self.actions.remove_volume(stack, name)

    def lock(self, stack: str, images: Iterable[str], operation: str) -> "StackLock":
        return self.actions.lock(stack, images, operation)

    def force_unlock(self, stack: str, lock_id: str = "") -> bool:
        return self.actions.force_unlock(stack, lock_id)

    def abort(self, stack: str) -> list[str]:
        """Refuse every later write and remove the stack's running helpers (see
        DockerActions.abort). Nothing to do when this run has not written at all."""
        with self._actions_lock:
            if self._actions is None:
                return []
        return self.actions.abort(stack)
