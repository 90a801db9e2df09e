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
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

from stackctl.engine import facts, namespaces
from stackctl.engine.socket_api import ApiError, SocketApi
from stackctl.errors import EngineError
from stackctl.observed import Observed
from stackctl.resources import LABEL_STACK, Resource
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

    def inspect(self, cid: str) -> Optional[dict[str, Any]]:
        try:
            return self.api.get(f"/containers/{cid}/json")
        except ApiError as exc:
            if exc.status == 404:
                return None  # removed between list and inspect
            raise EngineError(f"{cid[:12]}: inspect failed: {exc}") from None

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

    # --------------------------------------------------------------- actions
    def write_sysctls(self, stack: str, r: Resource) -> dict[str, str]:
        """Make the owner's namespaces hold the group's sysctls; returns the live values."""
        facts.refuse_host_wide(r)
        sysctls: dict[str, str] = r.config["sysctls"]
        if self.local_namespaces:
            # A new owner already has its sysctls (Docker writes them at creation): on a
            # local engine, reading them back costs well under a millisecond where a
            # helper run costs ~120 ms.
            d = self.reader.inspect(r.extra["owner"])
            pid = facts.from_inspect(d, local=True)[1] if d else 0
            if pid:
                live = namespaces.read_sysctls([(pid, sorted(sysctls))])[0]
                if live == sysctls:
                    return live
        return self.actions.write_sysctls(stack, r)

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
        # The env files' values are read here, at the last moment, and checked against
        # the digests the plan was made with; they go to the engine and nowhere else.
        env = envfile.environment(r.extra.get("env_files") or ())
        return self.actions.create_member(stack, r, owner, env)

    def restart(self, stack: str, cid: str, name: str) -> None:
        self.actions.restart(stack, cid, name)

    def update(self, stack: str, cid: str, name: str, changes: Mapping[str, Any]) -> None:
        self.actions.update(stack, cid, name, changes)

    def remove(self, stack: str, cid: str, name: str) -> None:
        self.actions.remove(stack, cid, name)

    def lock(self, stack: str, images: Iterable[str], operation: str) -> "StackLock":
        return self.actions.lock(stack, images, operation)

    def force_unlock(self, stack: str) -> bool:
        return self.actions.force_unlock(stack)
