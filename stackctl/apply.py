"""Execute a Plan against the engine, in dependency order, with bounded parallelism.

The applier decides nothing: each change's action maps to engine operations. A
replacement is split into a *destroy* step and a *create* step; all destroys run before
any create (so a port or name moving between resources is free when it is taken again),
destroys in reverse dependency order, creates in forward order. A failure skips only what
depends on it; the report names root causes.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping, Optional, Protocol

import attrs

from stackctl.errors import ApplyError, EngineError
from stackctl.executor import run_dag
from stackctl.member_config import IN_PLACE
from stackctl.spec.envfile import environment
from stackctl.plan.model import Action, Change, Plan
from stackctl.resources import Resource, Role

Step = tuple[str, str]  # ("destroy" | "create" | "update" | "restart" | "wait", address)
DEFAULT_WAIT_TIMEOUT = 300.0
_BARRIER: Step = ("barrier", "")


class EngineActions(Protocol):
    """The part of the engine adapter the applier uses (see stackctl.engine)."""

    def create_owner(self, stack: str, r: Resource) -> str: ...
    def create_member(self, stack: str, r: Resource, owner: str) -> str: ...
    def write_sysctls(self, stack: str, r: Resource, owner: str,
                      skip_if_live: bool = False) -> dict[str, str]: ...
    def restart(self, stack: str, cid: str, name: str) -> None: ...
    def update(self, stack: str, cid: str, name: str, changes: dict[str, Any]) -> None: ...
    def remove(self, stack: str, cid: str, name: str) -> None: ...
    def create_network(self, stack: str, r: Resource) -> str: ...
    def remove_network(self, stack: str, nid: str, name: str) -> None: ...
    def connect(self, stack: str, cid: str, name: str, network: str, aliases: list[str]) -> None: ...
    def disconnect(self, stack: str, cid: str, name: str, network: str) -> None: ...
    def create_volume(self, stack: str, r: Resource) -> str: ...
    def remove_volume(self, stack: str, name: str) -> None: ...
    def wait_ready(self, names: Mapping[str, str], timeout: float,
                   stop: Optional[threading.Event] = None, interval: float = 0.5) -> dict[str, str]: ...


@attrs.frozen
class Event:
    """Progress of one step, for the CLI to print (the applier itself prints nothing)."""

    step: str
    address: str
    phase: str  # "start" | "done" | "failed" | "skipped"
    detail: str = ""
    seconds: float = 0.0


def steps_of(plan: Plan) -> tuple[list[Step], list[tuple[Step, Step, bool]]]:
    """The plan's changes as steps, with (before, after, required) edges between them."""
    steps: list[Step] = []
    by_addr = {c.address: c for c in plan.actionable}
    for c in plan.actionable:
        if c.action in (Action.DELETE, Action.REPLACE):
            steps.append(("destroy", c.address))
        if c.action in (Action.CREATE, Action.REPLACE):
            steps.append(("create", c.address))
        if c.action in (Action.UPDATE, Action.RESTART):
            steps.append((c.action.value, c.address))
    have = set(steps)
    edges: list[tuple[Step, Step, bool]] = []
    forward = {"create", "update", "restart"}
    # Order holds through resources that do not change (a -> b -> c with only a and c
    # changing still orders a before c): link each change to its changing descendants.
    for dep in by_addr:
        for dependent in plan.dependents(dep):
            if dependent not in by_addr:
                continue
            for a in forward:
                for b in forward:
                    if (a, dep) in have and (b, dependent) in have:
                        edges.append(((a, dep), (b, dependent), True))
            if ("destroy", dependent) in have and ("destroy", dep) in have:
                edges.append((("destroy", dependent), ("destroy", dep), True))
    # Cross-group order: a member of a group that depends on another waits until every
    # member of that group runs, and is healthy where it has a health check. One "wait"
    # step per dependency member, after its own change if it has one; its failure skips
    # exactly the members that wait for it.
    waits: dict[str, str] = {}
    for c in plan.actionable:
        if c.resource is None or not (("create", c.address) in have or ("restart", c.address) in have):
            continue
        for dep, name in c.resource.extra.get("waits_for", []):
            waits[dep] = name
            for kind in ("create", "restart"):
                if (kind, c.address) in have:
                    edges.append((("wait", dep), (kind, c.address), True))
    for dep in waits:
        steps.append(("wait", dep))
        for kind in forward:
            if (kind, dep) in have:
                edges.append(((kind, dep), ("wait", dep), True))
    for s in steps:
        if s[0] == "destroy":
            edges.append((s, _BARRIER, False))
            if ("create", s[1]) in have:
                edges.append((s, ("create", s[1]), True))
        else:
            edges.append((_BARRIER, s, False))
    return [*steps, _BARRIER], edges


def waited_for(plan: Plan) -> dict[str, str]:
    """Address -> container name of every member the plan's members wait for."""
    return {dep: name for c in plan.changes if c.resource is not None
            for dep, name in c.resource.extra.get("waits_for", [])}


def members_of(plan: Plan) -> dict[str, str]:
    """Address -> container name of every member the plan leaves in place (for --wait)."""
    return {c.address: c.resource.name for c in plan.changes
            if c.resource is not None and c.resource.role is Role.MEMBER
            and c.action is not Action.DELETE}


def check_env_files(plan: Plan) -> None:
    """Before the first step: every env file a container will be created from still has
    the content the plan was made with. Otherwise nothing is done (a replacement must not
    destroy a container it then cannot create as planned)."""
    for c in plan.actionable:
        if c.action in (Action.CREATE, Action.REPLACE) and c.resource is not None:
            environment(c.resource.extra.get("env_files") or ())


class Applier:
    """Runs one plan. ``engine`` is the adapter; ``on_event`` receives progress."""

    def __init__(self, engine: EngineActions, plan: Plan, parallelism: int = 10,
                 on_event: Optional[Callable[[Event], None]] = None,
                 stop: Optional[threading.Event] = None,
                 wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> None:
        self.engine = engine
        self.wait_timeout = wait_timeout
        self.waited = waited_for(plan)
        self.plan = plan
        self.parallelism = parallelism
        self.on_event = on_event or (lambda e: None)
        self.stop = stop
        self.changes = {c.address: c for c in plan.changes}
        # group -> the id of its owner: the one observe listed (when the plan keeps it)
        # or the one create_owner returned. Helpers and members join the owner by this
        # id, never by name: a name can pass to a container without this stack's label.
        self.owner_ids: dict[str, str] = {
            c.resource.group: c.container_id for c in plan.changes
            if c.resource is not None and c.resource.role is Role.OWNER and c.container_id
            and c.action in (Action.NOOP, Action.UPDATE, Action.RESTART)}

    def run(self) -> None:
        check_env_files(self.plan)
        steps, edges = steps_of(self.plan)
        outcome = run_dag(steps, edges, self._run_step, self.parallelism, self.stop)
        for step, cause in outcome.skipped.items():
            self.on_event(Event(step[0], step[1], "skipped", f"{cause[1]} failed"))
        failures = [(s[1], str(e)) for s, e in outcome.failed.items()]
        skipped = sorted({s[1] for s in outcome.skipped} - {s[1] for s in outcome.failed})
        cancelled = [s[1] for s in outcome.cancelled if s != _BARRIER]
        if cancelled:
            failures.append(("apply", "interrupted before " + ", ".join(sorted(set(cancelled)))))
        if failures:
            raise ApplyError(failures, skipped)

    def _run_step(self, step: Step) -> None:
        kind, addr = step
        if step == _BARRIER:
            return
        self.on_event(Event(kind, addr, "start"))
        t0 = time.monotonic()
        name = self.waited.get(addr) or self.changes[addr].container_name or addr
        try:
            detail = self._wait(addr) if kind == "wait" else self._do(kind, self.changes[addr])
        except EngineError as exc:
            self.on_event(Event(kind, addr, "failed", str(exc), time.monotonic() - t0))
            raise
        except Exception as exc:  # an unexpected engine answer: keep the cause, name the step
            self.on_event(Event(kind, addr, "failed", repr(exc), time.monotonic() - t0))
            raise EngineError(f"{name}: {exc!r}") from exc
        self.on_event(Event(kind, addr, "done", detail, time.monotonic() - t0))

    def _wait(self, addr: str) -> str:
        """The health gate of a cross-group dependency."""
        name = self.waited[addr]
        not_ready = self.engine.wait_ready({addr: name}, self.wait_timeout, self.stop)
        if addr in not_ready:
            raise EngineError(f"{name} is not ready, so the members of groups that depend on "
                              f"its group were not started: {not_ready[addr]} (waited up to "
                              f"{self.wait_timeout:g}s; see --wait-timeout)")
        return ""

    def _do(self, kind: str, c: Change) -> str:
        stack = self.plan.stack
        r = c.resource
        if kind == "destroy":
            if not c.container_id:  # a helper has no container to remove
                return ""
            if c.kind == "network":
                self.engine.remove_network(stack, c.container_id, c.container_name or c.address)
            elif c.kind == "volume":
                self.engine.remove_volume(stack, c.container_id)
            else:
                self.engine.remove(stack, c.container_id, c.container_name or c.address)
            return ""
        assert r is not None, f"{c.address}: {kind} without a desired resource"
        if r.role is Role.NETWORK:
            return f"id={self.engine.create_network(stack, r)[:12]}"
        if r.role is Role.VOLUME:
            return f"name={self.engine.create_volume(stack, r)}"
        if kind in ("restart", "update") and r.role is not Role.HELPER:
            assert c.container_id and c.container_name
            mend = {a.name: a.after for a in c.attributes if a.name in ("name", "state", *IN_PLACE)}
            if mend:
                self.engine.update(stack, c.container_id, c.container_name, mend)
            for a in c.attributes:
                if a.name == "networks":
                    self._rejoin(c.container_id, r.name, a.before or {}, a.after or {})
            if kind == "restart":
                self.engine.restart(stack, c.container_id, r.name)
            return ""
        if r.role is Role.OWNER:
            cid = self.engine.create_owner(stack, r)
            self.owner_ids[r.group] = cid
            return f"id={cid[:12]}"
        owner = self.owner_ids.get(r.group)
        if owner is None:
            raise EngineError(f"{r.name}: the plan names no owner of group {r.group!r} to "
                              "join; nothing was created (make a new plan)")
        if r.role is Role.HELPER:
            # When the owner was just created or restarted (the change's cause), Docker
            # set the sysctls itself: reading them back may be enough. Never for drift
            # or --replace, which must write.
            values = self.engine.write_sysctls(stack, r, owner, skip_if_live=c.cause is not None)
            return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
        cid = self.engine.create_member(stack, r, owner)
        return f"id={cid[:12]}"

    def _rejoin(self, cid: str, name: str, before: dict[str, list[str]],
                after: dict[str, list[str]]) -> None:
        """Leave the networks the owner must leave, join those it must join; a network
        whose aliases changed is left and joined again (the engine cannot edit them)."""
        stack = self.plan.stack
        for network, aliases in before.items():
            if after.get(network) != aliases:
                self.engine.disconnect(stack, cid, name, network)
        for network, aliases in after.items():
            if before.get(network) != aliases:
                self.engine.connect(stack, cid, name, network, list(aliases))
