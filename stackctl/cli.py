"""Command line: arguments, prompts, exit codes. The only module that prints or exits.

Exit codes: 0 success (or no changes), 1 error, 2 changes present (``plan
--detailed-exitcode``). Heavy imports (docker, cattrs, networkx) happen inside the
commands, so ``stackctl --help`` starts fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, Sequence

from stackctl import __version__

if TYPE_CHECKING:
    from stackctl.apply import Event
    from stackctl.engine import Engine
    from stackctl.observed import Observed
    from stackctl.plan.model import Plan
    from stackctl.resources import Resource
    from stackctl.spec import LoadedSpec

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


class _Out:
    """Where output goes, and whether it may be coloured."""

    def __init__(self) -> None:
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    def say(self, text: str = "", end: str = "\n") -> None:
        sys.stdout.write(text + end)
        sys.stdout.flush()

    def error(self, text: str) -> None:
        colour = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        head = "\x1b[31;1mError:\x1b[0m" if colour else "Error:"
        lines = text.splitlines() or [""]
        sys.stderr.write(f"{head} {lines[0]}\n" + "".join(f"  {l}\n" for l in lines[1:]))
        sys.stderr.flush()


# --------------------------------------------------------------------- helpers
def _load(path: str) -> "LoadedSpec":
    from stackctl.spec import load

    return load(path)


_DESIRED: dict[int, tuple["LoadedSpec", list["Resource"]]] = {}


def _desired(loaded: "LoadedSpec") -> "list[Resource]":
    """The stack's desired resources, computed once per command (config hashes cost about
    0.2 ms per group, and a command asks up to four times)."""
    from stackctl.resources import desired

    if id(loaded) not in _DESIRED:
        _DESIRED[id(loaded)] = (loaded, desired(loaded.stack, loaded.env_files))
    return _DESIRED[id(loaded)][1]


def _observe_inputs(loaded: "LoadedSpec") -> tuple[dict[str, list[str]], dict[str, str]]:
    from stackctl.resources import Role

    keys: dict[str, list[str]] = {}
    images: dict[str, str] = {}
    for r in _desired(loaded):
        if r.role is Role.HELPER:
            keys[r.group] = sorted(r.config["sysctls"])
            images[r.group] = r.extra["image"]
    return keys, images


def _make_plan(args: argparse.Namespace, loaded: "LoadedSpec", engine: "Engine",
               destroy: bool = False) -> "Plan":
    return _observe_and_plan(args, loaded, engine, destroy)[0]


def _observe_and_plan(args: argparse.Namespace, loaded: "LoadedSpec", engine: "Engine",
                      destroy: bool = False) -> "tuple[Plan, Observed]":
    from stackctl.plan import make_plan
    from stackctl.resources import in_place_expected

    keys, images = _observe_inputs(loaded)
    refresh = getattr(args, "refresh", True)
    # A saved plan (plan --out) is checked against a fresh observe when applied: both
    # inspect every container, so that check sees a member restarted in between.
    inspect_all = refresh == "full" or bool(getattr(args, "out", None))
    observed = engine.observe(loaded.stack.name, keys, refresh=bool(refresh), helper_images=images,
                              inspect_all=inspect_all, expect=in_place_expected(_desired(loaded)))
    plan = make_plan(_desired(loaded), observed, destroy=destroy,
                     replace=getattr(args, "replace", None) or (),
                     targets=getattr(args, "target", None) or ())
    return plan, observed


def _engine() -> "Engine":
    from stackctl.engine import connect

    return connect()


def _images_of(loaded: "LoadedSpec") -> list[str]:
    """Images a lock container can be made from: the stack's own, which exist locally."""
    return list(dict.fromkeys(image for r in _desired(loaded) for image in r.images))


def _lock(engine: "Engine", stack: str, images: list[str], operation: str, timeout: float) -> Any:
    """Take the stack lock, waiting up to ``timeout`` seconds for another holder."""
    import time

    from stackctl.errors import LockError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return engine.lock(stack, images, operation)
        except LockError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _confirm(out: _Out, question: str, auto_approve: bool) -> bool:
    from stackctl.errors import StackctlError

    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise StackctlError("no terminal to ask for confirmation on: re-run with "
                            "--auto-approve to apply without asking")
    out.say(f"{question}\n  Only 'yes' will be accepted to approve.\n")
    try:
        answer = input("  Enter a value: ")
    except EOFError:
        answer = ""
    out.say()
    return answer.strip() == "yes"


_PROGRESS = {
    "create": ("Creating...", "Creation complete"),
    "destroy": ("Destroying...", "Destruction complete"),
    "update": ("Modifying...", "Modifications complete"),
    "restart": ("Restarting...", "Restart complete"),
}


def _printer(out: _Out) -> Callable[["Event"], None]:
    lock = threading.Lock()

    def on_event(e: "Event") -> None:
        start, done = _PROGRESS[e.step]
        with lock:
            if e.phase == "start":
                out.say(f"{e.address}: {start}")
            elif e.phase == "done":
                extra = f" [{e.detail}]" if e.detail else ""
                out.say(f"{e.address}: {done} after {e.seconds:.1f}s{extra}")
            elif e.phase == "failed":
                out.say(f"{e.address}: failed after {e.seconds:.1f}s")
            elif e.phase == "skipped":
                out.say(f"{e.address}: not attempted ({e.detail})")

    return on_event


def _execute(out: _Out, engine: "Engine", plan: "Plan", parallelism: int, verb: str) -> int:
    from stackctl.apply import Applier
    from stackctl.errors import StackctlError
    from stackctl.images import by_policy

    never = by_policy((c.resource for c in plan.changes if c.resource is not None), "never")
    missing = engine.missing_images(plan.images(), no_pull=never)
    if missing:
        raise StackctlError("images are missing, so nothing was changed:\n" + "\n".join(
            f"{image}: {cause}" for image, cause in sorted(missing.items())))

    stop = threading.Event()

    def interrupted(signum: int, _: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        out.error(f"{signal.Signals(signum).name}: finishing the steps under way, starting no "
                  "new ones (send again to abort at once)")

    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        Applier(engine, plan, parallelism, _printer(out), stop).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    s = plan.summary
    out.say()
    if verb == "destroy":
        out.say(f"Destroy complete! Resources: {s.destroy} destroyed.")
    else:
        out.say(f"Apply complete! Resources: {s.add} added, {s.change} changed, {s.destroy} destroyed.")
    return EXIT_OK


def _review_and_execute(out: _Out, args: argparse.Namespace, engine: "Engine", plan: "Plan",
                        verb: str, question: str) -> int:
    """Show the plan, ask (unless --auto-approve), then execute it."""
    from stackctl.render.human import render_plan

    out.say(render_plan(plan, out.colour, refreshed=bool(args.refresh)), end="")
    if plan.summary.empty:
        return EXIT_OK
    out.say()
    if not _confirm(out, question, args.auto_approve):
        out.say(f"{verb.capitalize()} cancelled.")
        return EXIT_ERROR
    return _execute(out, engine, plan, args.parallelism, verb)


# -------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace, out: _Out) -> int:
    loaded = _load(args.path)
    stack = loaded.stack
    members = sum(len(g.members) for g in stack.groups.values())
    out.say(f"Success! The spec is valid: stack {stack.name!r}, {len(stack.groups)} "
            f"group(s), {members} member(s), from {len(loaded.files)} file(s).")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, out: _Out) -> int:
    """Print the spec format's JSON Schema, for editors that check TOML against one."""
    import json

    from stackctl.spec.schema import json_schema

    out.say(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.plan import file as planfile
    from stackctl.render.human import render_plan
    from stackctl.render.json_plan import render_json

    loaded = _load(args.path)
    engine = _engine()
    plan = _make_plan(args, loaded, engine, destroy=args.destroy)
    if args.json:
        out.say(render_json(plan), end="")
    else:
        out.say(render_plan(plan, out.colour, refreshed=bool(args.refresh)), end="")
    if args.out:
        keys, images = _observe_inputs(loaded)
        with open(args.out, "w") as fh:
            fh.write(planfile.dumps(plan, keys, images, refresh=bool(args.refresh)))
        if not args.json:
            out.say(f"\nSaved the plan to {args.out}. To perform exactly these actions, run:\n"
                    f"    stackctl apply {args.out}")
    if args.detailed_exitcode and not plan.summary.empty:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_apply(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.errors import StackctlError
    from stackctl.plan import file as planfile

    if planfile.is_plan_file(args.path):
        if args.target or args.replace:
            raise StackctlError("--target and --replace belong to `stackctl plan`; a saved "
                                "plan is applied exactly as it was made")
        plan, keys, images, refresh = planfile.load(args.path)
        engine = _engine()
        with _lock(engine, plan.stack, plan.images(needed_only=False), "apply", args.lock_timeout):
            observed = engine.observe(plan.stack, keys, refresh=refresh, helper_images=images,
                                      inspect_all=True)
            planfile.check_current(args.path, plan, observed)
            if plan.summary.empty:
                out.say("No changes. The saved plan has nothing to do.")
                return EXIT_OK
            return _execute(out, engine, plan, args.parallelism,
                            "destroy" if plan.destroy else "apply")

    loaded = _load(args.path)
    engine = _engine()
    _pull_first(out, engine, loaded)
    with _lock(engine, loaded.stack.name, _images_of(loaded), "apply", args.lock_timeout):
        plan = _make_plan(args, loaded, engine)
        return _review_and_execute(out, args, engine, plan, "apply",
                                   "Do you want to perform these actions?")


def _pull_first(out: _Out, engine: "Engine", loaded: "LoadedSpec") -> None:
    """pull_policy = "always": pull before planning, so the plan sees what the tags name
    now; a failed pull stops apply before anything changes."""
    from stackctl.errors import StackctlError
    from stackctl.images import by_policy

    always = by_policy(_desired(loaded), "always")
    if not always:
        return
    results = engine.pull(always)
    for image, result in results.items():
        out.say(f"{image}: {result} (pull_policy always)")
    failed = [image for image, result in results.items() if result.startswith("failed")]
    if failed:
        raise StackctlError(f"pull_policy always: {', '.join(failed)} could not be pulled, so "
                            "nothing was changed (make the registry reachable, or set "
                            'pull_policy = "missing" to use the image on the engine)')
    out.say()


def cmd_pull(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.errors import StackctlError
    from stackctl.images import pull_policies

    loaded = _load(args.path)
    policies = pull_policies(_desired(loaded))
    engine = _engine()
    for image in (i for i, p in policies.items() if p == "never"):
        out.say(f"{image}: not pulled (pull_policy never)")
    results = engine.pull([i for i, p in policies.items() if p != "never"],
                          only_missing=args.policy == "missing")
    shown = {"pulled": "pulled", "present": "already present, not pulled (--policy missing)"}
    for image, result in results.items():
        out.say(f"{image}: {shown.get(result, result)}")
    failed = [image for image, result in results.items() if result.startswith("failed")]
    if failed:
        raise StackctlError(f"{len(failed)} of {len(results)} image(s) could not be pulled: "
                            f"{', '.join(failed)}")
    return EXIT_OK


def cmd_destroy(args: argparse.Namespace, out: _Out) -> int:

    loaded = _load(args.path)
    engine = _engine()
    args.refresh = False  # live sysctls do not matter to a destroy
    with _lock(engine, loaded.stack.name, _images_of(loaded), "destroy", args.lock_timeout):
        plan = _make_plan(args, loaded, engine, destroy=True)
        return _review_and_execute(out, args, engine, plan, "destroy", "Do you really want to "
                                   f"destroy every container of stack {plan.stack!r}?")


def cmd_force_unlock(args: argparse.Namespace, out: _Out) -> int:
    loaded = _load(args.path)
    engine = _engine()
    if engine.force_unlock(loaded.stack.name):
        out.say(f"Released the lock of stack {loaded.stack.name!r}.")
    else:
        out.say(f"Stack {loaded.stack.name!r} was not locked.")
    return EXIT_OK


def cmd_graph(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.render.dot import render_dot

    loaded = _load(args.path)
    plan = _make_plan(args, loaded, _engine(), destroy=args.destroy)
    out.say(render_dot(plan), end="")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, out: _Out) -> int:
    import json

    from stackctl.render.status import render_status, status_document

    loaded = _load(args.path)
    plan, observed = _observe_and_plan(args, loaded, _engine())
    if args.json:
        doc = status_document(plan, observed, _desired(loaded))
        out.say(json.dumps(doc, indent=2))
    else:
        out.say(render_status(plan, observed, _desired(loaded)), end="")
    return EXIT_OK


# ---------------------------------------------------------------------- parser
def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _refresh(text: str) -> "bool | str":
    """--refresh: true (default), false (skip live sysctls) or full (inspect every member)."""
    if text.lower() == "full":
        return "full"
    try:
        return _bool(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected true, false or full, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return n


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1 like every other error: exit code 2 means
    "there are changes" to `plan --detailed-exitcode`, and automation must not read a
    mistyped flag as that."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"Error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="stackctl",
        description="Declarative namespace groups for Docker hosts: plan, apply, destroy.",
    )
    p.add_argument("--version", action="version", version=f"stackctl {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def path_arg(sp: argparse.ArgumentParser, what: str = "spec file or directory") -> None:
        sp.add_argument("path", nargs="?", default=".", metavar="PATH",
                        help=f"{what} (default: the current directory)")

    def plan_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--target", action="append", metavar="ADDR",
                        help="limit to ADDR and what it depends on (repeatable)")
        sp.add_argument("--replace", action="append", metavar="ADDR",
                        help="force replacement of ADDR (repeatable)")
        sp.add_argument("--refresh", type=_refresh, default=True, metavar="MODE",
                        help="true: read live sysctls from each namespace (default); false: "
                             "skip them; full: also inspect every member container (sees a "
                             "member's restart policy changed with `docker update`)")

    sp = sub.add_parser("validate", help="check a spec offline; no engine needed")
    path_arg(sp)
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("schema", help="print the JSON Schema of the spec format, for editors")
    sp.set_defaults(func=cmd_schema)

    sp = sub.add_parser("plan", help="show what apply would change, and why")
    path_arg(sp)
    sp.add_argument("--json", action="store_true", help="print the plan as one JSON document")
    sp.add_argument("--out", metavar="FILE", help="save the plan for `stackctl apply FILE`")
    sp.add_argument("--detailed-exitcode", action="store_true",
                    help="exit 2 when there are changes, 0 when there are none")
    sp.add_argument("--destroy", action="store_true", help="plan the destruction of the stack")
    plan_opts(sp)
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser("apply", help="converge the engine to the spec (or apply a saved plan)")
    path_arg(sp, "spec file or directory, or a plan saved with `plan --out`")
    sp.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    sp.add_argument("--parallelism", type=_positive, default=10, metavar="N",
                    help="at most N operations at once (default: 10)")
    plan_opts(sp)
    sp.set_defaults(func=cmd_apply)

    sp.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                    help="wait this long for another stackctl's lock (default: 0, refuse)")

    sp = sub.add_parser("destroy", help="remove every container of the stack")
    path_arg(sp)
    sp.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                    help="wait this long for another stackctl's lock (default: 0, refuse)")
    sp.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    sp.add_argument("--parallelism", type=_positive, default=10, metavar="N",
                    help="at most N operations at once (default: 10)")
    sp.add_argument("--target", action="append", metavar="ADDR", help=argparse.SUPPRESS)
    sp.set_defaults(func=cmd_destroy)

    sp = sub.add_parser("status", help="read-only view per group: owner, members, live sysctls")
    path_arg(sp)
    sp.add_argument("--json", action="store_true", help="print the status as JSON")
    sp.add_argument("--refresh", type=_refresh, default=True, metavar="MODE",
                    help="true: read live sysctls from each namespace (default); false: "
                         "skip them; full: also inspect every member container")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("pull", help="pull the stack's images")
    path_arg(sp)
    sp.add_argument("--policy", choices=("always", "missing"), default="always",
                    help="always: pull every image (default); missing: only images not on "
                         "the engine. Images only members with pull_policy never use are skipped")
    sp.set_defaults(func=cmd_pull)

    sp = sub.add_parser("force-unlock",
                        help="release a stack lock left behind by a killed stackctl")
    path_arg(sp)
    sp.set_defaults(func=cmd_force_unlock)

    sp = sub.add_parser("graph", help="print the plan's dependency graph as DOT")
    path_arg(sp)
    sp.add_argument("--destroy", action="store_true", help="graph a destroy plan")
    plan_opts(sp)
    sp.set_defaults(func=cmd_graph)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    out = _Out()
    from stackctl.errors import StackctlError

    try:
        return int(args.func(args, out))
    except StackctlError as exc:
        out.error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_ERROR


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
