"""The library layer: load -> observe -> plan -> lock -> apply, returning results and events.

Two faces sit on it: the CLI (arguments, prompts, exit codes, the only printer) and the
watch agent (engine events, timers, backoff, metrics). Neither repeats the sequence:
``stackctl apply --auto-approve`` and every converge of ``stackctl watch`` are the same
:func:`converge` call, so what one learns (a new resource, a new check before a step) the
other gets. Nothing here prints, exits, reads a terminal or knows argparse: progress goes
to callbacks, outcomes come back as values or :class:`~stackctl.errors.StackctlError`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

import attrs

from stackctl.errors import LockError, StackctlError

if TYPE_CHECKING:
    from stackctl.apply import Event
    from stackctl.engine import Engine
    from stackctl.engine.docker_engine import StackLock
    from stackctl.observed import Observed
    from stackctl.plan.model import Plan
    from stackctl.resources import Resource
    from stackctl.spec import LoadedSpec

# Receives one line of news the caller should show (a lock taken over, a lock waited for).
Notice = Callable[[str], None]
# Shown the plan before it is executed; returns whether to go ahead (the CLI's prompt).
Approve = Callable[["Plan"], bool]


class Cancel:
    """Cooperative cancellation, shared by a face (which owns the signals) and the library.

    ``stop``: start no new step, let the ones under way finish (a first Ctrl-C or SIGTERM
    while executing). ``abort``: stop now (a second signal, or one that arrives while
    nothing is executing). ``executing`` tells the face which of the two a signal means.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.executing = False


@attrs.frozen
class PlanOptions:
    """How to observe and plan: the knobs of ``plan``/``apply``/``destroy``."""

    refresh: Union[bool, str] = True  # True, False, or "full" (inspect every member)
    destroy: bool = False
    replace: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    # A plan to be saved (plan --out) is made the way its stale check will observe:
    # with every container inspected, so that check sees a member restarted in between.
    for_saved_plan: bool = False
    volumes: bool = False  # destroy --volumes: the stack's own volumes go too

    @property
    def inspect_all(self) -> bool:
        return self.refresh == "full" or self.for_saved_plan


@attrs.frozen
class Outcome:
    """What one converge did. ``executed`` is False for an empty plan or a refusal."""

    stack: str
    plan: "Plan"
    approved: bool
    executed: bool
    seconds: float


def load(path: Union[str, Path], names_only: bool = False) -> "LoadedSpec":
    """The spec at ``path``; ``names_only`` for a destroy, which needs the stack's names
    but not the variables that only feed values."""
    from stackctl.spec import load as load_spec

    return load_spec(path, names_only=names_only)


class Session:
    """One stack (a loaded spec) against one engine; computes the desired resources once
    (config hashes cost about 0.2 ms per group, and a command needs them up to four times)."""

    def __init__(self, loaded: "LoadedSpec", engine: "Optional[Engine]" = None) -> None:
        self.loaded = loaded
        self._engine = engine
        self._desired: "Optional[list[Resource]]" = None

    @property
    def engine(self) -> "Engine":
        if self._engine is None:
            from stackctl.engine import connect

            self._engine = connect()
        return self._engine

    @property
    def stack(self) -> str:
        return self.loaded.stack.name

    def desired(self) -> "list[Resource]":
        if self._desired is None:
            from stackctl.resources import desired

            self._desired = desired(self.loaded.stack, self.loaded.env_files)
        return self._desired

    def observe_inputs(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        """What observe needs from the spec: sysctl keys and helper image per group."""
        from stackctl.resources import Role

        keys: dict[str, list[str]] = {}
        images: dict[str, str] = {}
        for r in self.desired():
            if r.role is Role.HELPER:
                keys[r.group] = sorted(r.config["sysctls"])
                images[r.group] = r.extra["image"]
        return keys, images

    def images(self) -> list[str]:
        """Images a lock container can be made from: the stack's own, which exist locally."""
        return list(dict.fromkeys(image for r in self.desired() for image in r.images))

    def observe_and_plan(self, opts: PlanOptions = PlanOptions()) -> "tuple[Plan, Observed]":
        from stackctl.plan import make_plan
        from stackctl.resources import in_place_expected

        keys, images = self.observe_inputs()
        observed = self.engine.observe(self.stack, keys, refresh=bool(opts.refresh),
                                       helper_images=images, inspect_all=opts.inspect_all,
                                       expect=in_place_expected(self.desired()))
        plan = make_plan(self.desired(), observed, destroy=opts.destroy,
                         replace=opts.replace, targets=opts.targets, volumes=opts.volumes)
        return plan, observed

    def plan(self, opts: PlanOptions = PlanOptions()) -> "Plan":
        return self.observe_and_plan(opts)[0]

    def pull_always(self, on_info: Optional[Notice] = None) -> None:
        """pull_policy = "always": pull before planning, so the plan sees what the tags
        name now; a failed pull stops before anything changes."""
        from stackctl.images import by_policy

        always = by_policy(self.desired(), "always")
        if not always:
            return
        results = self.engine.pull(always)
        for image, result in results.items():
            if on_info is not None:
                on_info(f"{image}: {result} (pull_policy always)")
        failed = [image for image, result in results.items() if result.startswith("failed")]
        if failed:
            raise StackctlError(f"pull_policy always: {', '.join(failed)} could not be pulled, "
                                "so nothing was changed (make the registry reachable, or set "
                                'pull_policy = "missing" to use the image on the engine)')

    def lock(self, operation: str, timeout: float = 0.0, cancel: Optional[Cancel] = None,
             on_notice: Optional[Notice] = None) -> "StackLock":
        return take_lock(self.engine, self.stack, self.images(), operation, timeout, cancel,
                         on_notice)


def take_lock(engine: "Engine", stack: str, images: list[str], operation: str,
              timeout: float = 0.0, cancel: Optional[Cancel] = None,
              on_notice: Optional[Notice] = None) -> "StackLock":
    """Take the stack lock, waiting up to ``timeout`` seconds for another holder."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            lock = engine.lock(stack, images, operation)
            if lock.took_over is not None and on_notice is not None:
                h = lock.took_over
                on_notice(f"took over the lock of stack {stack!r} left by a stackctl that is "
                          f"gone ({h.text}): {h.why}")
            return lock
        except LockError:
            if time.monotonic() >= deadline or (cancel is not None and cancel.stop.is_set()):
                raise
            if cancel is not None:
                cancel.stop.wait(0.5)
            else:
                time.sleep(0.5)


def execute(engine: "Engine", plan: "Plan", parallelism: int = 10,
            on_event: "Optional[Callable[[Event], None]]" = None,
            cancel: Optional[Cancel] = None, wait_timeout: float = 300.0) -> None:
    """Run a plan: refuse up front when an image is missing or a new host port is held by
    someone else (nothing is destroyed first), then walk its graph. ``wait_timeout``
    bounds how long a group waits for the groups it depends on to be ready."""
    from stackctl.apply import Applier
    from stackctl.images import by_policy
    from stackctl.plan import preflight

    never = by_policy((c.resource for c in plan.changes if c.resource is not None), "never")
    missing = engine.missing_images(plan.images(), no_pull=never)
    if missing:
        raise StackctlError("images are missing, so nothing was changed:\n" + "\n".join(
            f"{image}: {cause}" for image, cause in sorted(missing.items())))
    wanted = {(b.host_port, b.protocol) for _, b in preflight.new_bindings(plan)}
    busy = preflight.port_conflicts(plan, engine.held_ports(wanted))
    if busy:
        raise StackctlError("host ports are in use, so nothing was changed (free them, or "
                            "publish other host ports):\n" + "\n".join(busy))
    cancel = cancel or Cancel()
    cancel.executing = True
    try:
        Applier(engine, plan, parallelism, on_event, cancel.stop, wait_timeout).run()
    except BaseException as exc:
        if cancel.abort.is_set() or isinstance(exc, KeyboardInterrupt):
            # Aborted (a second signal): the steps under way are not waited for, so make
            # sure none of them writes from now on, and that no helper is left writing
            # after the caller releases the lock.
            cancel.abort.set()
            engine.abort(plan.stack)
        raise
    finally:
        cancel.executing = False


def converge(session: Session, opts: PlanOptions = PlanOptions(), *,
             approve: Optional[Approve] = None, operation: str = "apply",
             parallelism: int = 10, lock_timeout: float = 0.0,
             on_event: "Optional[Callable[[Event], None]]" = None,
             on_notice: Optional[Notice] = None, cancel: Optional[Cancel] = None,
             plan_before_lock: bool = False, wait_timeout: float = 300.0,
             on_info: Optional[Notice] = None) -> Outcome:
    """Lock, plan, approve, execute: ``apply`` and ``destroy``, and each agent converge.

    ``approve`` sees the plan first (it is not called for an empty plan); without one the
    plan is executed as made (``--auto-approve``). ``plan_before_lock`` plans once without
    the lock and takes it only when there is something to do: an agent re-planning every
    minute then costs the engine its reads alone, not a lock container's create and remove.
    """
    t0 = time.monotonic()
    if not opts.destroy:
        session.pull_always(on_info)
    if plan_before_lock:
        plan = session.plan(opts)
        if plan.summary.empty:
            return Outcome(session.stack, plan, True, False, time.monotonic() - t0)
    with session.lock(operation, lock_timeout, cancel, on_notice):
        plan = session.plan(opts)
        if plan.summary.empty:
            return Outcome(session.stack, plan, True, False, time.monotonic() - t0)
        if approve is not None and not approve(plan):
            return Outcome(session.stack, plan, False, False, time.monotonic() - t0)
        execute(session.engine, plan, parallelism, on_event, cancel, wait_timeout)
    return Outcome(session.stack, plan, True, True, time.monotonic() - t0)


def apply_saved(path: Union[str, Path], engine: "Optional[Engine]" = None, *, parallelism: int = 10,
                lock_timeout: float = 0.0, on_event: "Optional[Callable[[Event], None]]" = None,
                on_notice: Optional[Notice] = None, cancel: Optional[Cancel] = None,
                wait_timeout: float = 300.0) -> Outcome:
    """Apply a plan saved by ``plan --out``, exactly, or refuse it as stale. The file is
    read and checked before the engine (``engine``, or DOCKER_HOST's) is contacted."""
    from stackctl.plan import file as planfile

    t0 = time.monotonic()
    plan, keys, images, refresh = planfile.load(path)
    if engine is None:
        from stackctl.engine import connect

        engine = connect()
    with take_lock(engine, plan.stack, plan.images(needed_only=False), "apply", lock_timeout,
                   cancel, on_notice):
        observed = engine.observe(plan.stack, keys, refresh=refresh, helper_images=images,
                                  inspect_all=True)
        planfile.check_current(path, plan, observed)
        if plan.summary.empty:
            return Outcome(plan.stack, plan, True, False, time.monotonic() - t0)
        execute(engine, plan, parallelism, on_event, cancel, wait_timeout)
    return Outcome(plan.stack, plan, True, True, time.monotonic() - t0)


def save_plan(session: Session, plan: "Plan", path: Union[str, Path], refresh: bool) -> None:
    from stackctl.plan import file as planfile

    keys, images = session.observe_inputs()
    planfile.save(path, planfile.dumps(plan, keys, images, refresh=refresh))
