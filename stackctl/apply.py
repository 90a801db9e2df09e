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
from typing import Any, Callable, Optional, Protocol

import attrs

from stackctl.errors import ApplyError, EngineError
from stackctl.executor import run_dag
from stackctl.member_config import IN_PLACE
from stackctl.spec.envfile import environment
from stackctl.plan.model import Action, Change, Plan
from stackctl.resources import Resource, Role

Step = tuple[str, str]  # ("destroy" | "create" | "update" | "restart", address)
_BARRIER: Step = ("barrier", "")


class EngineActions(Protocol):
    """The part of the engine adapter the applier uses (see stackctl.engine)."""

    def create_owner(self, stack: str, r: Resource) -> str: ...
    def create_member(self, stack: str, r: Resource, owner: str) -> str: ...
    def write_sysctls(self, stack: str, r: Resource) -> dict[str, str]: ...
    def restart(self, stack: str, cid: str, name: str) -> None: ...
    def update(self, stack: str, cid: str, name: str, changes: dict[str, Any]) -> None: ...
    def remove(self, stack: str, cid: str, name: str) -> None: ...


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
    for s in steps:
        if s[0] == "destroy":
            edges.append((s, _BARRIER, False))
            if ("create", s[1]) in have:
                edges.append((s, ("create", s[1]), True))
        else:
            edges.append((_BARRIER, s, False))
    return [*steps, _BARRIER], edges


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
                 stop: Optional[threading.Event] = None) -> None:
        self.engine = engine
        self.plan = plan
        self.parallelism = parallelism
        self.on_event = on_event or (lambda e: None)
        self.stop = stop
        self.changes = {c.address: c for c in plan.changes}

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
        change = self.changes[addr]
        self.on_event(Event(kind, addr, "start"))
        t0 = time.monotonic()
        try:
            detail = self._do(kind, change)
        except EngineError as exc:
            self.on_event(Event(kind, addr, "failed", str(exc), time.monotonic() - t0))
            raise
        except Exception as exc:  # an unexpected engine answer: keep the cause, name the step
            self.on_event(Event(kind, addr, "failed", repr(exc), time.monotonic() - t0))
            raise EngineError(f"{change.container_name}: {exc!r}") from exc
        self.on_event(Event(kind, addr, "done", detail, time.monotonic() - t0))

    def _do(self, kind: str, c: Change) -> str:
        stack = self.plan.stack
        r = c.resource
        if kind == "destroy":
            if c.container_id:  # a helper has no container to remove
                self.engine.remove(stack, c.container_id, c.container_name or c.address)
            return ""
        assert r is not None, f"{c.address}: {kind} without a desired resource"
        if kind in ("restart", "update") and r.role is not Role.HELPER:
            assert c.container_id and c.container_name
            mend = {a.name: a.after for a in c.attributes if a.name in ("name", *IN_PLACE)}
            if mend:
                self.engine.update(stack, c.container_id, c.container_name, mend)
            if kind == "restart":
                self.engine.restart(stack, c.container_id, r.name)
            return ""
        if r.role is Role.HELPER:
            values = self.engine.write_sysctls(stack, r)
            return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
        if r.role is Role.OWNER:
            cid = self.engine.create_owner(stack, r)
        else:
            cid = self.engine.create_member(stack, r, r.extra["owner"])
        return f"id={cid[:12]}"
