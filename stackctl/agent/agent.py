"""The agent's loop: what triggers a converge, when, and what it did.

Threads: the caller's (this loop: discovery, spec polling, the interval, dispatch), one
following the engine's events, a small pool converging stacks (``--parallelism``), and
the HTTP server. Every converge is :func:`stackctl.session.converge`, the call behind
``apply --auto-approve``, planned before the lock is taken so that an idle re-plan costs
the engine its reads only.

Triggers, per stack: start; an engine event on one of its containers (debounced); its
files changed on disk; the interval; the engine's event stream reopened (after a dockerd
restart, every stack); SIGHUP (re-read the PATHs). A failing stack backs off (1 s
doubling to 5 min) while the others go on; an invalid spec changes nothing and waits for
the next edit; a stack locked by someone else is tried again every few seconds.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import attrs

from stackctl.agent.log import Log
from stackctl.agent.metrics import Metrics, Server
from stackctl.agent.options import Options
from stackctl.agent.sources import Checkout, Fingerprint, GitError, discover, fingerprint
from stackctl.errors import EngineUnavailable, LockError, SpecError, StackctlError
from stackctl.session import Cancel, PlanOptions, Session, converge, load

if TYPE_CHECKING:
    from stackctl.apply import Event
    from stackctl.engine import Engine
    from stackctl.plan.model import Plan
    from stackctl.spec import LoadedSpec

# Engine events that can mean a stack drifted. Helpers and locks are stackctl's own
# short-lived containers: their events are ignored (a converge would trigger itself).
WATCHED_EVENTS = ["die", "start", "destroy", "rename", "oom", "health_status"]
_OWN_ROLES = {"helper", "lock"}


@attrs.define
class StackState:
    path: Path
    name: str = ""  # the stack's name, once its spec has loaded
    loaded: "Optional[LoadedSpec]" = None
    state: str = "pending"  # pending|converging|in-sync|failing|invalid|locked|removed|waiting-for-engine
    last_error: str = ""
    commit: str = ""
    last_converged: Optional[float] = None  # Unix time of the last successful converge
    failures: int = 0
    due: Optional[float] = None  # monotonic time of the next converge, if one is wanted
    first_trigger: Optional[float] = None  # of a pending debounced event
    event_since: Optional[float] = None  # first engine event not yet converged (heal time)
    reason: str = ""
    running: bool = False
    again: bool = False  # triggered while converging: converge once more afterwards
    retry: Optional[tuple[str, float]] = None  # asked by the converge: (reason, delay)
    files: Fingerprint = ()
    removed: bool = False  # its directory is gone (and, with --prune, it was destroyed)
    pruning: bool = False  # gone, and --prune asks for its destruction

    @property
    def key(self) -> str:
        return self.name or str(self.path)

    def document(self) -> dict[str, Any]:
        return {"path": str(self.path), "state": self.state, "last_error": self.last_error,
                "commit": self.commit, "failures": self.failures,
                "last_converged": (datetime.fromtimestamp(self.last_converged, timezone.utc)
                                   .isoformat(timespec="seconds") if self.last_converged else "")}


class Agent:
    def __init__(self, options: Options, log: Log, engine: "Optional[Engine]" = None) -> None:
        self.o = options
        self.log = log
        self.engine = engine
        self.metrics = Metrics()
        self.cancel = Cancel()  # stop: finish steps under way, start none
        self.stacks: dict[Path, StackState] = {}
        self._mu = threading.Lock()  # guards self.stacks and every StackState
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._engine_up = False
        self._heartbeat = time.monotonic()
        self._checkouts: dict[Path, Checkout] = {}
        self.server: Optional[Server] = None
        if options.listen:
            host, port = options.listen
            try:
                self.server = Server(host, port, self.metrics, self.health)
            except OSError as exc:
                raise StackctlError(f"--listen {host}:{port}: cannot serve /metrics and /healthz "
                                    f"there: {exc.strerror or exc} (pick a free port, or an "
                                    "address of this host)") from None

    # ------------------------------------------------------------- control
    def stop(self) -> None:
        """SIGTERM/SIGINT: finish the steps under way, start none, return from run()."""
        self.cancel.stop.set()
        self._wake.set()

    def reload(self) -> None:
        """SIGHUP: read the PATHs again (new stacks, removed stacks, changed specs)."""
        self._reload.set()
        self._wake.set()

    # ---------------------------------------------------------------- run
    def run(self) -> int:
        if self.server:
            self.server.start()
            host, port = self.server.address[0], self.server.address[1]
            self.log("listening", reason=f"http://{host!s}:{port}/metrics and /healthz")
        if self.engine is None:
            self.engine = self._connect()
            if self.engine is None:
                return 0  # stopped while waiting for the engine
        self._engine_up = True
        self.metrics.engine_up.set(1)
        if self.o.git:
            self._sync_git()
        self._discover(initial=True)
        self.log("watching", reason=f"{len(self.stacks)} stack(s); interval {self.o.interval:g}s",
                 stacks=len(self.stacks))
        follower = threading.Thread(target=self._follow_events, name="stackctl-events", daemon=True)
        follower.start()
        pool = ThreadPoolExecutor(max_workers=max(1, self.o.parallelism),
                                  thread_name_prefix="stackctl-converge")
        next_interval = time.monotonic() + self.o.interval
        next_poll = time.monotonic() + self.o.poll
        try:
            while not self.cancel.stop.is_set():
                now = time.monotonic()
                self._heartbeat = now
                if self._reload.is_set():
                    self._reload.clear()
                    self.log("reload", reason="SIGHUP: reading the PATHs again")
                    self._discover(everything=True, reason="SIGHUP")
                if now >= next_interval:
                    next_interval = now + self.o.interval
                    if self.o.git:
                        self._sync_git()
                    self._discover(everything=True, reason="interval")
                    next_poll = now + self.o.poll
                elif now >= next_poll:
                    next_poll = now + self.o.poll
                    self._discover()
                for st in self._due(now):
                    pool.submit(self._converge, st)
                wake_at = min([next_interval, next_poll] + self._due_times())
                self._wake.wait(max(0.0, wake_at - time.monotonic()))
                self._wake.clear()
        finally:
            self.log("stopping", reason="finishing the steps under way, starting none")
            pool.shutdown(wait=True, cancel_futures=True)
            if self.server:
                self.server.stop()
        self.log("stopped")
        return 0

    def _connect(self) -> "Optional[Engine]":
        from stackctl.engine import connect

        said = False
        delay = self.o.backoff_min
        while not self.cancel.stop.is_set():
            try:
                return connect()
            except EngineUnavailable as exc:
                if not said:
                    self.log("engine-unavailable", reason=f"{exc}; waiting for it")
                    said = True
            self.cancel.stop.wait(delay)
            delay = min(delay * 2, 5.0)
        return None

    # ----------------------------------------------------------- triggers
    def _schedule(self, st: StackState, reason: str, delay: float = 0.0, event: bool = False) -> None:
        """Ask for a converge of ``st`` in ``delay`` seconds (caller holds self._mu)."""
        now = time.monotonic()
        if st.running:
            st.again = True
            st.reason = st.reason or reason
            if event and st.event_since is None:
                st.event_since = now
            return
        if event:
            if st.event_since is None:
                st.event_since = now
            if st.first_trigger is None:
                st.first_trigger = now
            # Debounce: wait until the events settle, but never longer than debounce_max.
            want = min(now + self.o.debounce, st.first_trigger + self.o.debounce_max)
        else:
            want = now + delay
        if st.failures and st.due is not None and st.due > want and not reason.startswith("spec"):
            return  # backing off: a failing stack is not retried early by an event
        st.due = want if st.due is None or event else min(st.due, want)
        st.reason = st.reason or reason
        self._wake.set()

    def _due(self, now: float) -> list[StackState]:
        with self._mu:
            ready = [st for st in self.stacks.values()
                     if st.due is not None and st.due <= now and not st.running]
            for st in ready:
                st.running, st.due, st.first_trigger = True, None, None
            return ready

    def _due_times(self) -> list[float]:
        with self._mu:
            return [st.due for st in self.stacks.values() if st.due is not None and not st.running]

    def _discover(self, initial: bool = False, everything: bool = False, reason: str = "") -> None:
        """Find stacks added or removed, and files changed; schedule what needs it."""
        try:
            paths = discover(self.o.paths)
        except SpecError as exc:
            self.log("error", reason=str(exc))
            return
        with self._mu:
            for path in paths:
                st = self.stacks.get(path)
                files = fingerprint(path)
                if st is None or st.removed:
                    st = self.stacks[path] = StackState(path=path, files=files)
                    if not initial:
                        self.log("stack-added", str(path))
                    self._schedule(st, "start" if initial else "stack added")
                elif st.pruning:
                    st.pruning = False  # back before it was pruned: converge it instead
                    st.state = "pending"
                    self._schedule(st, "stack back on disk")
                elif files != st.files:
                    st.files = files
                    st.failures = 0  # a new spec deserves a prompt try, not the backoff
                    st.due = None
                    self._schedule(st, "spec changed on disk")
                elif everything:
                    self._schedule(st, reason)
            for path, st in list(self.stacks.items()):
                if path not in paths and not st.removed and not st.pruning:
                    st.state = "removed"
                    st.due = None
                    if self.o.prune and st.loaded is not None:
                        self.log("stack-removed", st.key, reason=f"{path} is gone: pruning it (--prune)")
                        st.pruning = True
                        self._schedule(st, "prune")
                    else:
                        st.removed = True
                        self.log("stack-removed", st.key, reason=f"{path} is gone; its containers are "
                                 "left running (run `stackctl destroy`, or watch with --prune)")

    def _follow_events(self) -> None:
        """Follow the engine's container events; reopen the stream whenever it ends."""
        assert self.engine is not None
        filters = {"type": ["container"], "label": ["stackctl.stack"], "event": WATCHED_EVENTS}
        delay = self.o.backoff_min
        first = True
        while not self.cancel.stop.is_set():
            try:
                stream = self.engine.events(filters)
            except StackctlError as exc:
                if self._engine_up:
                    self._engine_up = False
                    self.metrics.engine_up.set(0)
                    self.log("engine-unavailable", reason=f"{exc}; waiting for it")
                self.cancel.stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = self.o.backoff_min
            if not first:
                self.log("engine-available", reason="event stream reopened: re-planning every stack")
                with self._mu:
                    for st in self.stacks.values():
                        if not st.removed:
                            self._schedule(st, "engine event stream reopened")
            first = False
            self._engine_up = True
            self.metrics.engine_up.set(1)
            for ev in stream:
                if self.cancel.stop.is_set():
                    return
                self._on_event(ev)
            if self.cancel.stop.is_set():
                return
            self._engine_up = False
            self.metrics.engine_up.set(0)
            self.log("engine-unavailable", reason="the engine closed its event stream; reopening")

    def _on_event(self, ev: dict[str, Any]) -> None:
        attrs_ = (ev.get("Actor") or {}).get("Attributes") or {}
        stack, role = attrs_.get("stackctl.stack", ""), attrs_.get("stackctl.role", "")
        if not stack or role in _OWN_ROLES:
            return
        action = str(ev.get("Action") or ev.get("status") or "")
        with self._mu:
            targets = [st for st in self.stacks.values()
                       if st.name == stack and not st.removed and not st.pruning]
            for st in targets:
                self._schedule(st, f"engine event: {attrs_.get('name', '?')} {action}", event=True)
        if targets:
            group, member = attrs_.get("stackctl.group", ""), attrs_.get("stackctl.member", "")
            address = ".".join(x for x in (role, group, member) if x)
            self.log("engine-event", stack, address=address, action=action,
                     reason=f"container {attrs_.get('name', '?')}")

    def _sync_git(self) -> None:
        roots: dict[Path, Checkout] = {}
        for raw in self.o.paths:
            co = Checkout.find(Path(raw).resolve())
            if co is None:
                self.log("git-error", reason=f"{raw} is not inside a git checkout (--git)")
                continue
            roots[co.root] = co
        for root, co in roots.items():
            try:
                before, after, note = co.sync()
            except GitError as exc:
                self.log("git-error", reason=str(exc))
                with self._mu:
                    for st in self.stacks.values():
                        if _under(st.path, root):
                            st.last_error = str(exc)
                continue
            if note:
                self.log("git-pull", reason=note, commit=after, previous=before)
        self._checkouts = roots

    def _commit_of(self, path: Path) -> str:
        for root, co in self._checkouts.items():
            if _under(path, root):
                try:
                    return co.head()
                except GitError:
                    return ""
        return ""

    # ---------------------------------------------------------- converge
    def _converge(self, st: StackState) -> None:
        try:
            self._converge_once(st)
        except Exception as exc:  # a bug must not kill the worker, nor stall the stack
            with self._mu:
                st.state, st.last_error = "failing", f"internal error: {exc!r}"
                st.failures += 1
                st.retry = ("retry after failure", self._backoff(st))
            self.log("error", st.key, reason=f"internal error: {exc!r}")
        finally:
            with self._mu:
                self._settle(st, time.monotonic())
                self._wake.set()

    def _backoff(self, st: StackState) -> float:
        """1 s, 2 s, 4 s, ... up to 5 min after the 1st, 2nd, 3rd, ... failure in a row."""
        return float(min(self.o.backoff_min * 2 ** max(0, st.failures - 1), self.o.backoff_max))

    def _settle(self, st: StackState, now: float) -> None:
        """After a converge (caller holds self._mu): schedule the retry it asked for (a
        failure's backoff, a lock's wait), else one more converge if something happened
        meanwhile. Events during a backoff wait for it: never a hot loop."""
        st.running = False
        retry, st.retry = st.retry, None
        again, st.again = st.again, False
        if self.cancel.stop.is_set():
            return
        if retry is not None:
            st.reason = st.reason or retry[0]
            st.due = now + retry[1]
            st.first_trigger = None
        elif again:
            self._schedule(st, st.reason or "triggered while converging", self.o.debounce)

    def _converge_once(self, st: StackState) -> None:
        assert self.engine is not None
        t0 = time.monotonic()
        with self._mu:
            reason, st.reason = st.reason, ""
            event_since, st.event_since = st.event_since, None
            prune = st.pruning
        if prune:
            self._prune(st)
            return
        try:
            loaded = load(st.path)
        except SpecError as exc:
            with self._mu:
                st.state, st.last_error = "invalid", str(exc)
                name = st.name
            self.metrics.converges.labels(name or str(st.path), "invalid").inc()
            self.metrics.in_sync.labels(name or str(st.path)).set(0)
            self.log("invalid-spec", name or str(st.path), reason="nothing was changed; "
                     "waiting for the next edit", error=str(exc))
            return
        name = loaded.stack.name
        with self._mu:
            clash = [o for o in self.stacks.values()
                     if o is not st and o.name == name and not o.removed]
            if clash:
                st.state = "invalid"
                st.last_error = (f"stack name {name!r} is declared by both {st.path} and "
                                 f"{clash[0].path}: each stack needs its own name")
                self.log("invalid-spec", name, reason="nothing was changed", error=st.last_error)
                return
            st.name, st.loaded, st.state = name, loaded, "converging"
        commit = self._commit_of(st.path)
        session = Session(loaded, self.engine)

        def on_event(e: "Event") -> None:
            if e.phase in ("done", "failed", "skipped"):
                self.log(f"step-{e.phase}", name, address=e.address, action=e.step,
                         reason=e.detail, seconds=e.seconds if e.phase != "skipped" else None)

        def approve(plan: "Plan") -> bool:
            # No person to ask: the plan is logged, change by change, and carried out.
            for c in plan.actionable:
                self.log("change", name, address=c.address, action=c.action.value, reason=c.reason)
            return True

        try:
            outcome = converge(session, PlanOptions(), parallelism=self.o.step_parallelism,
                               approve=approve, on_event=on_event, cancel=self.cancel,
                               on_notice=lambda text: self.log("lock", name, reason=text),
                               plan_before_lock=True)
        except LockError as exc:
            with self._mu:
                st.state, st.last_error = "locked", str(exc)
                st.retry = (reason or "retry: locked", self.o.lock_retry)
                st.event_since = st.event_since or event_since
            self.metrics.converges.labels(name, "locked").inc()
            self.log("locked", name, reason=f"{exc}; trying again in {self.o.lock_retry:g}s")
            return
        except EngineUnavailable as exc:
            with self._mu:
                st.state, st.last_error = "waiting-for-engine", str(exc)
                st.event_since = st.event_since or event_since
            self.log("engine-unavailable", name, reason=str(exc))
            return  # the event follower re-plans every stack when the engine is back
        except StackctlError as exc:
            with self._mu:
                st.failures += 1
                wait = self._backoff(st)
                st.state, st.last_error = "failing", str(exc)
                st.retry = ("retry after failure", wait)
                # The heal is not over: its time runs on to the converge that succeeds.
                st.event_since = st.event_since or event_since
            self.metrics.converges.labels(name, "failed").inc()
            self.metrics.failures.labels(name).inc()
            self.metrics.in_sync.labels(name).set(0)
            self.log("converge-failed", name, reason=f"retrying in {wait:g}s (failure {st.failures})",
                     error=str(exc), seconds=time.monotonic() - t0)
            return
        now = time.time()
        with self._mu:
            st.failures, st.state, st.last_error = 0, "in-sync", ""
            st.last_converged, st.commit = now, commit or st.commit
        self.metrics.last_success.labels(name).set(now)
        self.metrics.in_sync.labels(name).set(1)
        if not outcome.executed:
            self.metrics.converges.labels(name, "noop").inc()
            return
        self.metrics.converges.labels(name, "applied").inc()
        for c in outcome.plan.actionable:
            self.metrics.drift.labels(name, c.action.value).inc()
        if event_since is not None:
            self.metrics.heal.labels(name).observe(time.monotonic() - event_since)
        s = outcome.plan.summary
        self.log("converged", name, reason=f"{s.add} added, {s.change} changed, {s.destroy} "
                 f"destroyed ({reason})", seconds=outcome.seconds, commit=commit)

    def _prune(self, st: StackState) -> None:
        assert self.engine is not None and st.loaded is not None
        name = st.loaded.stack.name
        session = Session(st.loaded, self.engine)
        try:
            outcome = converge(session, PlanOptions(refresh=False, destroy=True),
                               operation="destroy", parallelism=self.o.step_parallelism,
                               cancel=self.cancel, plan_before_lock=True)
        except StackctlError as exc:
            with self._mu:
                st.failures += 1
                st.state, st.last_error = "failing", str(exc)
                st.retry = ("prune", self._backoff(st))
            self.log("prune-failed", name, error=str(exc))
            return
        with self._mu:
            st.removed, st.pruning, st.state = True, False, "pruned"
        self.log("pruned", name, reason=f"{outcome.plan.summary.destroy} destroyed",
                 seconds=outcome.seconds)

    # ------------------------------------------------------------- health
    def health(self) -> tuple[bool, dict[str, Any]]:
        with self._mu:
            stacks = {st.key: st.document() for st in self.stacks.values()}
        loop_ok = (time.monotonic() - self._heartbeat
                   < max(5.0, 3 * self.o.poll)) and not self.cancel.stop.is_set()
        ok = loop_ok and self._engine_up
        return ok, {"status": "ok" if ok else "unhealthy",
                    "engine": "up" if self._engine_up else "down",
                    "loop": "running" if loop_ok else "stalled or stopping",
                    "stacks": stacks}


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
