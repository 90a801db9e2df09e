"""Command line: arguments, prompts, exit codes. The only module that prints or exits.

Exit codes: 0 success (or no changes), 1 error, 2 changes present (``plan
--detailed-exitcode``). Heavy imports (docker, cattrs, networkx) happen inside the
commands, so ``stackctl --help`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, Optional, Sequence

from stackctl import __version__

if TYPE_CHECKING:
    from stackctl.apply import Event
    from stackctl.engine import Engine
    from stackctl.plan.model import Plan
    from stackctl.session import Cancel, Outcome, PlanOptions, Session

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


class _Out:
    """Where output goes, and whether it may be coloured."""

    def __init__(self) -> None:
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    def say(self, text: str = "", end: str = "\n") -> None:
        sys.stdout.write(text + end)
        sys.stdout.flush()

    def line(self, text: str) -> None:
        """One log line of the agent; a closed stdout must not stop it."""
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass

    def error(self, text: str) -> None:
        colour = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        head = "\x1b[31;1mError:\x1b[0m" if colour else "Error:"
        lines = text.splitlines() or [""]
        sys.stderr.write(f"{head} {lines[0]}\n" + "".join(f"  {l}\n" for l in lines[1:]))
        sys.stderr.flush()


# --------------------------------------------------------------------- helpers
def _session(path: str, names_only: bool = False) -> "Session":
    from stackctl.session import Session, load

    return Session(load(path, names_only=names_only))


def _plan_options(args: argparse.Namespace, destroy: bool = False) -> "PlanOptions":
    from stackctl.session import PlanOptions

    return PlanOptions(refresh=getattr(args, "refresh", True), destroy=destroy,
                       replace=tuple(getattr(args, "replace", None) or ()),
                       targets=tuple(getattr(args, "target", None) or ()),
                       for_saved_plan=bool(getattr(args, "out", None)),
                       volumes=bool(getattr(args, "volumes", False)))


def _confirm(out: _Out, question: str, auto_approve: bool, verb: str = "apply") -> bool:
    from stackctl.errors import StackctlError

    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise StackctlError("no terminal to ask for confirmation on: re-run with "
                            f"--auto-approve to {verb} without asking")
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
    "wait": ("Waiting until running and healthy...", "Ready"),
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


@contextlib.contextmanager
def _signals(out: _Out, cancel: "Cancel") -> Iterator[None]:
    """While a command that changes the engine runs: a first SIGINT, SIGTERM or SIGHUP (a
    closed ssh session) during execution finishes the steps under way and starts none; a
    signal at any other moment (e.g. at the prompt), or a second one, aborts at once:
    running helpers are removed and the lock is released on the way out."""

    def interrupted(signum: int, _: Any) -> None:
        if cancel.executing and not cancel.stop.is_set():
            cancel.stop.set()
            try:  # after SIGHUP the terminal may be gone
                out.error(f"{signal.Signals(signum).name}: finishing the steps under way, "
                          "starting no new ones (send again to abort at once)")
            except OSError:
                pass
            return
        cancel.stop.set()
        cancel.abort.set()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupted)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _approver(out: _Out, args: argparse.Namespace, verb: str, question: str
              ) -> "Callable[[Plan], bool]":
    """Show the plan, then ask (unless --auto-approve)."""
    from stackctl.render.human import render_plan

    def approve(plan: "Plan") -> bool:
        out.say(render_plan(plan, out.colour, refreshed=bool(args.refresh),
                            targeted=bool(getattr(args, "target", None))), end="")
        out.say()
        if not _confirm(out, question, args.auto_approve, verb):
            out.say(f"{verb.capitalize()} cancelled.")
            return False
        return True

    return approve


def _finish(out: _Out, args: argparse.Namespace, outcome: "Outcome", verb: str) -> int:
    from stackctl.render.human import render_plan

    if not outcome.approved:
        return EXIT_ERROR
    if not outcome.executed:  # nothing to do: the plan was not shown yet
        out.say(render_plan(outcome.plan, out.colour, refreshed=bool(args.refresh),
                            targeted=bool(getattr(args, "target", None))), end="")
        return EXIT_OK
    s = outcome.plan.summary
    out.say()
    if verb == "destroy":
        out.say(f"Destroy complete! Resources: {s.destroy} destroyed.")
        kept = [str(c.container_name) for c in outcome.plan.changes
                if c.kind == "volume" and c.action.value == "no-op"]
        if kept:
            out.say(f"Kept {len(kept)} volume(s) and their data: {', '.join(kept)} (remove "
                    "them with `stackctl destroy --volumes`).")
    else:
        out.say(f"Apply complete! Resources: {s.add} added, {s.change} changed, {s.destroy} destroyed.")
    return EXIT_OK


def _wait(out: _Out, engine: "Engine", plan: "Plan", timeout: float) -> int:
    """apply --wait: every member running, and healthy where it has a health check."""
    from stackctl.apply import members_of

    members = members_of(plan)
    out.say(f"\nWaiting up to {timeout:g}s for {len(members)} member(s) to be running and healthy...")
    not_ready = engine.wait_ready(members, timeout)
    if not not_ready:
        out.say("Every member is running, and healthy where it has a health check.")
        return EXIT_OK
    out.error(f"{len(not_ready)} member(s) not ready after {timeout:g}s:\n" + "\n".join(
        f"{addr} ({members[addr]}): {state}" for addr, state in sorted(not_ready.items())))
    return EXIT_ERROR


# -------------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.errors import SpecError
    from stackctl.spec.repo import is_repo, load_all

    repo = is_repo(args.path)
    results = load_all(args.path)
    invalid = 0
    for path, loaded in results:
        if isinstance(loaded, SpecError):
            if not repo:
                raise loaded
            invalid += 1
            out.error(str(loaded))
            continue
        stack = loaded.stack
        members = sum(len(g.members) for g in stack.groups.values())
        where = f" ({path})" if repo else ""
        out.say(f"Success! The spec is valid: stack {stack.name!r}{where}, {len(stack.groups)} "
                f"group(s), {members} member(s), from {len(loaded.files)} file(s).")
    if invalid:
        out.error(f"{invalid} of {len(results)} stacks in {args.path} are invalid")
        return EXIT_ERROR
    return EXIT_OK


def cmd_watch(args: argparse.Namespace, out: _Out) -> int:
    """Run the agent until SIGTERM/SIGINT (exit 0); SIGHUP re-reads the PATHs."""
    from stackctl.agent import Agent, Options
    from stackctl.agent.log import Log

    listen = None
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise _usage(f"--listen: expected HOST:PORT, e.g. 127.0.0.1:9469, got {args.listen!r}")
        listen = (host.strip("[]") or "0.0.0.0", int(port))
    agent = Agent(Options(paths=tuple(args.paths), interval=args.interval, git=args.git,
                          prune=args.prune, listen=listen, parallelism=args.parallelism),
                  Log(out.line, args.log_format))
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    signal.signal(signal.SIGHUP, lambda *_: agent.reload())
    return agent.run()


def cmd_schema(args: argparse.Namespace, out: _Out) -> int:
    """Print the spec format's JSON Schema, for editors that check TOML against one."""
    import json

    from stackctl.spec.schema import json_schema

    out.say(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_plan(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.render.human import render_plan
    from stackctl.render.json_plan import render_json
    from stackctl.session import save_plan

    session = _session(args.path)
    plan = session.plan(_plan_options(args, destroy=args.destroy))
    if args.json:
        out.say(render_json(plan), end="")
    else:
        out.say(render_plan(plan, out.colour, refreshed=bool(args.refresh),
                            targeted=bool(args.target)), end="")
    if args.out:
        save_plan(session, plan, args.out, refresh=bool(args.refresh))
        if not args.json:
            out.say(f"\nSaved the plan to {args.out}. To perform exactly these actions, run:\n"
                    f"    stackctl apply {args.out}")
    if args.detailed_exitcode and not plan.summary.empty:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_apply(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.errors import StackctlError
    from stackctl.plan import file as planfile
    from stackctl.session import Cancel, apply_saved, converge

    cancel = Cancel()
    if planfile.is_plan_file(args.path):
        if args.target or args.replace or args.refresh is not None:
            raise StackctlError("--target, --replace and --refresh belong to `stackctl plan`; "
                                "a saved plan is applied exactly as it was made")
        with _signals(out, cancel):
            outcome = apply_saved(args.path, parallelism=args.parallelism,
                                  lock_timeout=args.lock_timeout, on_event=_printer(out),
                                  on_notice=out.error, cancel=cancel,
                                  wait_timeout=args.wait_timeout)
        if outcome.executed:
            rc = _finish(out, args, outcome, "destroy" if outcome.plan.destroy else "apply")
        else:
            out.say("No changes. The saved plan has nothing to do.")
            rc = EXIT_OK  # and --wait still waits, as apply --wait does without changes
        if rc == EXIT_OK and args.wait and not outcome.plan.destroy:
            from stackctl.engine import connect

            rc = _wait(out, connect(), outcome.plan, args.wait_timeout)
        return rc

    args.refresh = True if args.refresh is None else args.refresh
    session = _session(args.path)
    with _signals(out, cancel):
        outcome = converge(session, _plan_options(args), parallelism=args.parallelism,
                           approve=_approver(out, args, "apply",
                                             "Do you want to perform these actions?"),
                           lock_timeout=args.lock_timeout, on_event=_printer(out),
                           on_notice=out.error, on_info=out.say, cancel=cancel,
                           wait_timeout=args.wait_timeout)
    rc = _finish(out, args, outcome, "apply")
    if rc == EXIT_OK and args.wait and outcome.approved:
        rc = _wait(out, session.engine, outcome.plan, args.wait_timeout)
    return rc


def cmd_pull(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.errors import StackctlError
    from stackctl.images import pull_policies

    session = _session(args.path)
    policies = pull_policies(session.desired())
    engine = session.engine
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
    from stackctl.session import Cancel, converge

    # Destroy acts on what the engine has: variables that only feed values are not needed.
    session = _session(args.path, names_only=True)
    args.refresh = False  # live sysctls do not matter to a destroy
    cancel = Cancel()
    what = ("every container, network and volume" if args.volumes
            else "every container and network")
    question = f"Do you really want to destroy {what} of stack {session.stack!r}?"
    with _signals(out, cancel):
        outcome = converge(session, _plan_options(args, destroy=True), operation="destroy",
                           parallelism=args.parallelism, lock_timeout=args.lock_timeout,
                           approve=_approver(out, args, "destroy", question),
                           on_event=_printer(out), on_notice=out.error, cancel=cancel)
    return _finish(out, args, outcome, "destroy")


def cmd_force_unlock(args: argparse.Namespace, out: _Out) -> int:
    session = _session(args.path)
    if session.engine.force_unlock(session.stack, args.lock_id or ""):
        out.say(f"Released the lock of stack {session.stack!r}.")
    else:
        out.say(f"Stack {session.stack!r} was not locked.")
    return EXIT_OK


def cmd_graph(args: argparse.Namespace, out: _Out) -> int:
    from stackctl.render.dot import render_dot

    plan = _session(args.path).plan(_plan_options(args, destroy=args.destroy))
    out.say(render_dot(plan), end="")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, out: _Out) -> int:
    import json

    from stackctl.render.status import render_status, status_document

    session = _session(args.path)
    plan, observed = session.observe_and_plan(_plan_options(args))
    if args.json:
        out.say(json.dumps(status_document(plan, observed, session.desired()), indent=2))
    else:
        out.say(render_status(plan, observed, session.desired()), end="")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace, out: _Out) -> int:
    """Compose files -> a spec on stdout or in -o PATH; what was not converted on stderr."""
    from pathlib import Path

    from stackctl.convert import convert_files, output_file, write_output

    spec_file = output_file(args.output, Path.cwd())
    result = convert_files(args.files, spec_file, args.stack, os.environ)
    for note in result.notes:
        sys.stderr.write(f"Warning: {note}\n")
    if args.output:
        write_output(result, spec_file)
    else:
        out.say(result.text, end="")
    summary = (f"Converted {result.members} Compose service(s) into {result.groups} "
               f"group(s) of stack {result.stack!r}"
               + (f", {len(result.notes)} thing(s) not converted (listed above)"
                  if result.notes else "")
               + (f"; wrote {spec_file}" if args.output else "") + ".")
    sys.stderr.write(summary + "\n")
    return EXIT_OK


def cmd_export_kubernetes(args: argparse.Namespace, out: _Out) -> int:
    """Stack -> Kubernetes manifests (stdout or -o FILE); notes and warnings on stderr."""
    from stackctl.errors import StackctlError
    from stackctl.export.kube_yaml import render, sysctl_lines
    from stackctl.export.kubernetes import export_kubernetes
    from stackctl.session import load

    loaded = load(args.path)
    base = args.path if os.path.isdir(args.path) else os.path.dirname(args.path) or "."
    export = export_kubernetes(loaded.stack, namespace=args.namespace, base_dir=base)
    text = render(export)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise StackctlError(f"cannot write {args.output}: {exc.strerror}") from None
    else:
        out.say(text, end="")
    notes = sysctl_lines(export)
    notes += [f"Create first: {c}" for c in export.secret_commands()]
    notes += [f"Warning: {w}" for w in export.warnings]
    sys.stderr.write("".join(f"{line}\n" for line in notes))
    if args.output:
        sys.stderr.write(f"Wrote {len(export.documents)} object(s) of stack "
                         f"{export.stack!r} to {args.output}.\n")
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


def _usage(message: str) -> Exception:
    from stackctl.errors import StackctlError

    return StackctlError(message)


def _duration(text: str) -> float:
    from stackctl.agent.options import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return n


def _seconds(text: str) -> float:
    try:
        n = float(text)
    except ValueError:
        n = -1.0
    if not n > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
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

    def plan_opts(sp: argparse.ArgumentParser, refresh_default: "bool | None" = True) -> None:
        sp.add_argument("--target", action="append", metavar="ADDR",
                        help="limit to ADDR and what it depends on (repeatable)")
        sp.add_argument("--replace", action="append", metavar="ADDR",
                        help="force replacement of ADDR (repeatable)")
        sp.add_argument("--refresh", type=_refresh, default=refresh_default, metavar="MODE",
                        help="true: read live sysctls from each namespace (default); false: "
                             "skip them; full: also inspect every member container (sees a "
                             "member's restart policy changed with `docker update`)")

    sp = sub.add_parser("validate", help="check a spec, or a repo of stacks, offline; no "
                        "engine needed")
    path_arg(sp, "spec file or directory, or a directory of stack directories")
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
    plan_opts(sp, refresh_default=None)  # None: not given, which a saved plan requires
    sp.add_argument("--wait", action="store_true",
                    help="return only when every member is running, and healthy where it "
                         "has a health check (exit 1 naming each that is not)")
    sp.add_argument("--wait-timeout", type=_seconds, default=300.0, metavar="SECONDS",
                    help="how long --wait, and a group waiting for the groups it depends "
                         "on, wait for a member to be ready (default: 300)")
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
    sp.add_argument("--volumes", action="store_true",
                    help="also remove the stack's named volumes and their data (never an "
                         "external one); without it they are kept")
    sp.set_defaults(func=cmd_destroy)

    sp = sub.add_parser("status", help="read-only view per group: owner, members, live sysctls")
    path_arg(sp)
    sp.add_argument("--json", action="store_true", help="print the status as JSON")
    sp.add_argument("--refresh", type=_refresh, default=True, metavar="MODE",
                    help="true: read live sysctls from each namespace (default); false: "
                         "skip them; full: also inspect every member container")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("convert", help="turn a Compose project into a spec (no engine)")
    sp.add_argument("files", nargs="+", metavar="COMPOSE_FILE",
                    help="Compose files, merged in order as `docker compose -f` does")
    sp.add_argument("--stack", metavar="NAME",
                    help="the stack's name (default: Compose's project name)")
    sp.add_argument("-o", "--output", metavar="PATH",
                    help="write DIR/stack.toml (or PATH when it ends in .toml) instead of "
                         "printing; relative paths are rewritten to stay valid from there")
    sp.set_defaults(func=cmd_convert)

    sp = sub.add_parser("pull", help="pull the stack's images")
    path_arg(sp)
    sp.add_argument("--policy", choices=("always", "missing"), default="always",
                    help="always: pull every image (default); missing: only images not on "
                         "the engine. Images only members with pull_policy never use are skipped")
    sp.set_defaults(func=cmd_pull)

    sp = sub.add_parser("force-unlock",
                        help="release a stack lock left behind by a killed stackctl")
    path_arg(sp)
    sp.add_argument("--lock-id", metavar="ID",
                    help="the lock's ID (shown when the lock refuses): needed unless its "
                         "holder is known to be gone from this host")
    sp.set_defaults(func=cmd_force_unlock)

    sp = sub.add_parser("watch", help="run unattended: converge and heal the stacks "
                        "continuously (GitOps agent)")
    sp.add_argument("paths", nargs="+", metavar="PATH",
                    help="a stack, or a directory of stacks (each subdirectory with *.toml)")
    sp.add_argument("--interval", type=_duration, default=60.0, metavar="DURATION",
                    help="full re-plan of every stack this often: 60, 30s, 5m (default: 60s)")
    sp.add_argument("--git", action="store_true",
                    help="each interval, fetch and fast-forward the checkout to its upstream")
    sp.add_argument("--prune", action="store_true",
                    help="destroy a stack whose directory disappeared (default: report it)")
    sp.add_argument("--listen", metavar="HOST:PORT",
                    help="serve /metrics (Prometheus) and /healthz here")
    sp.add_argument("--log-format", choices=("text", "json"), default="text",
                    help="log lines as text (default) or JSON lines")
    sp.add_argument("--parallelism", type=_positive, default=4, metavar="N",
                    help="converge at most N stacks at once (default: 4)")
    sp.set_defaults(func=cmd_watch)

    sp = sub.add_parser("graph", help="print the plan's dependency graph as DOT")
    path_arg(sp)
    sp.add_argument("--destroy", action="store_true", help="graph a destroy plan")
    plan_opts(sp)
    sp.set_defaults(func=cmd_graph)

    sp = sub.add_parser("export", help="write the stack in another tool's format; no engine")
    formats = sp.add_subparsers(dest="format", metavar="FORMAT")
    formats.required = True
    fp = formats.add_parser("kubernetes", help="Kubernetes manifests: a Deployment per group, "
                            "Services, claims, NetworkPolicies (see docs/migrating.md)")
    path_arg(fp)
    fp.add_argument("-o", "--output", metavar="FILE", help="write the manifests to FILE "
                    "(default: standard output)")
    fp.add_argument("--namespace", metavar="NS", help="set metadata.namespace on every object")
    fp.set_defaults(func=cmd_export_kubernetes)
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
