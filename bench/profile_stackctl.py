#!/usr/bin/env python3
"""Where does stackctl's time go? Profile apply / plan / change / destroy on one stack.

    python bench/profile_stackctl.py [--groups 50] [--out DIR] [--py-spy]

Runs the benchmark stack (bench/stacks.py) of N groups through stackctl *in process*
(``stackctl.cli.main``), with:

* a phase trace: wall time of each top-level step of the CLI (load the spec, observe the
  engine, plan, render, image check, applier), of the engine adapter's facts (connect,
  ``Engine.observe``, ``facts.observe``, the ``/proc`` scan and in-process sysctl reads of
  ``engine.namespaces``) and of every docker-py action (``DockerActions``, ``StackLock``),
  summed over threads, with counts; and every process started, by program;
* every HTTP request to the engine, by endpoint and transport (stackctl's stdlib socket
  client for reads of a local engine, docker-py for actions): count, summed latency, mean;
* cProfile of the main thread (the worker threads show up in the trace above), the top
  functions by cumulative and by own time written to DIR/*.txt;
* with ``--py-spy``: the same commands as subprocesses under ``py-spy record`` (all threads,
  idle included), collapsed stacks written to DIR/pyspy-*.txt and the top frames printed;
* import cost of the modules a plan needs (``python -X importtime``).

Containers are named ``benchs-*``; everything is removed at the end. This script imports
docker-py itself, so in-process times never include its import (``stackctl plan`` does not
import it; see the imports section for what a plan's process pays).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # noqa: E402
from run import engine_requests, spawned_processes  # noqa: E402

import docker  # noqa: E402


class Trace:
    """Summed wall time and counts per label, thread-safe; plus HTTP requests by endpoint."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[str, list[float]] = defaultdict(list)
        self.http: dict[str, list[float]] = defaultdict(list)
        self.processes: dict[str, int] = defaultdict(int)
        self.undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        orig = getattr(owner, attr)

        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return orig(*a, **kw)
            finally:
                with self.lock:
                    self.spans[label].append(time.perf_counter() - t0)

        setattr(owner, attr, wrapper)
        self.undo.append(lambda: setattr(owner, attr, orig))

    def install(self) -> None:
        import stackctl.apply
        import stackctl.engine
        import stackctl.engine.adapter as adapter
        import stackctl.engine.facts as facts
        import stackctl.engine.namespaces as namespaces
        import stackctl.plan
        import stackctl.render.human
        import stackctl.spec

        # Requests through both transports: SocketApi.get (reads of a local engine) and
        # docker-py's APIClient.send (actions; reads of a remote engine), timed per endpoint.
        def request(transport: str, endpoint: str, seconds: float) -> None:
            label = f"`{endpoint}`" if transport == "socket" else f"`{endpoint}` (docker-py)"
            with self.lock:
                self.http[label].append(seconds)

        def spawned(program: str) -> None:
            with self.lock:
                self.processes[program] += 1

        for ctx in (engine_requests(request), spawned_processes(spawned)):
            ctx.__enter__()
            self.undo.append(lambda ctx=ctx: ctx.__exit__(None, None, None))

        self.wrap(stackctl.spec, "load", "cli: load spec")
        self.wrap(stackctl.engine, "connect", "cli: engine connect (+ ping)")
        self.wrap(stackctl.plan, "make_plan", "cli: make_plan")
        self.wrap(stackctl.render.human, "render_plan", "cli: render_plan")
        self.wrap(stackctl.apply.Applier, "run", "cli: Applier.run")
        for name in ("observe", "write_sysctls"):
            if hasattr(adapter.Engine, name):
                self.wrap(adapter.Engine, name, f"Engine.{name}")
        self.wrap(facts, "observe", "facts.observe")
        for name in ("container_pids", "runs_in", "read_sysctls"):
            if hasattr(namespaces, name):
                self.wrap(namespaces, name, f"namespaces.{name}")
        # The whole run of a subprocess.run (its start is counted above, by program).
        orig_run = subprocess.run

        def run(cmd: Any, *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return orig_run(cmd, *a, **kw)
            finally:
                program = cmd if isinstance(cmd, (str, bytes)) else (list(cmd) or ["?"])[0]
                with self.lock:
                    self.spans[f"subprocess.run {Path(str(program)).name}"].append(time.perf_counter() - t0)

        subprocess.run = run
        self.undo.append(lambda: setattr(subprocess, "run", orig_run))

        try:  # docker-py's half; a plan on a local engine never uses it
            import stackctl.engine.docker_engine as de
        except ImportError:
            return
        for name in ("missing_images", "create_owner", "create_member", "write_sysctls", "_run_helper",
                     "read_by_helper", "_remove_leftover", "restart", "update", "remove", "lock",
                     "force_unlock"):
            if hasattr(de.DockerActions, name):
                self.wrap(de.DockerActions, name, f"DockerActions.{name}")
        if hasattr(de, "StackLock"):
            self.wrap(de.StackLock, "release", "StackLock.release")

    def uninstall(self) -> None:
        for f in reversed(self.undo):
            f()
        self.undo.clear()

    def report(self, wall: float) -> str:
        lines = [f"wall time (in process): {wall:.2f} s", "",
                 "| span | count | total s (summed over threads) | mean ms |", "|---|---:|---:|---:|"]
        for k, v in sorted(self.spans.items(), key=lambda kv: -sum(kv[1])):
            lines.append(f"| {k} | {len(v)} | {sum(v):.2f} | {1000 * sum(v) / len(v):.1f} |")
        lines += ["", "| engine endpoint (stackctl's socket client unless marked) | requests | total s (summed over threads) | mean ms | max ms |",
                  "|---|---:|---:|---:|---:|"]
        for k, v in sorted(self.http.items(), key=lambda kv: -sum(kv[1])):
            lines.append(f"| {k} | {len(v)} | {sum(v):.2f} | {1000 * sum(v) / len(v):.1f} | {1000 * max(v):.0f} |")
        lines.append(f"| **all** | {sum(len(v) for v in self.http.values())} | "
                     f"{sum(sum(v) for v in self.http.values()):.2f} | | |")
        started = ", ".join(f"{k} x{v}" for k, v in sorted(self.processes.items()))
        lines += ["", f"processes started: {sum(self.processes.values())}" + (f" ({started})" if started else "")]
        return "\n".join(lines)


def profiled(label: str, argv: list[str], out: Path, top: int = 25) -> str:
    import stackctl.cli

    trace = Trace()
    prof = cProfile.Profile()
    buf = io.StringIO()
    try:
        trace.install()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            prof.enable()
            rc = stackctl.cli.main(argv)
            prof.disable()
    finally:
        trace.uninstall()
    wall = time.perf_counter() - t0
    stats_txt = io.StringIO()
    st = pstats.Stats(prof, stream=stats_txt)
    st.sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    (out / f"cprofile-{label}.txt").write_text(stats_txt.getvalue())
    st.dump_stats(str(out / f"cprofile-{label}.prof"))
    summary = [l for l in buf.getvalue().splitlines() if l.startswith(("Plan:", "Apply complete", "Destroy complete", "No changes"))]
    return (f"### {label}: `stackctl {' '.join(argv[:-1])}` (exit {rc}; {'; '.join(summary)})\n\n"
            + trace.report(wall) + "\n\ncProfile, main thread only, top by cumulative time: "
            + f"see {out.name}/cprofile-{label}.txt\n\n```\n" + _top(stats_txt.getvalue(), 18) + "\n```\n")


def _top(text: str, n: int) -> str:
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip().startswith("ncalls")), 0)
    return "\n".join(lines[start:start + n + 1])


def pyspy(label: str, argv: list[str], out: Path) -> str:
    exe = shutil.which("py-spy")
    if not exe:
        return f"(py-spy not installed: `pip install py-spy`; skipped {label})\n"
    raw = out / f"pyspy-{label}.txt"
    cmd = [sys.executable, "-m", "stackctl", *argv]
    subprocess.run([exe, "record", "--idle", "--rate", "250", "--format", "raw", "-o", str(raw), "--", *cmd],
                   capture_output=True, check=False)
    if not raw.exists():
        return f"(py-spy produced nothing for {label})\n"
    # Collapsed stacks "frame;frame;... count": attribute samples to stackctl frames.
    own: dict[str, int] = defaultdict(int)
    total = 0
    incl: dict[str, int] = defaultdict(int)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        try:
            c = int(count)
        except ValueError:
            continue
        total += c
        frames = stack.split(";")
        seen = set()
        for f in frames:
            if "stackctl/" in f and f not in seen:
                seen.add(f)
                incl[f] += c
        own[frames[-1]] += c
    lines = [f"py-spy (all threads, idle included), {total} samples at 250 Hz; collapsed stacks in {raw.name}",
             "", "top stackctl frames by inclusive samples (summed over threads):", ""]
    for f, c in sorted(incl.items(), key=lambda kv: -kv[1])[:15]:
        lines.append(f"  {c:6d}  {f}")
    lines += ["", "top leaf frames:", ""]
    for f, c in sorted(own.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"  {c:6d}  {f}")
    return f"### py-spy {label}\n\n```\n" + "\n".join(lines) + "\n```\n"


def import_cost() -> str:
    code = ("import stackctl.cli, stackctl.spec, stackctl.engine, stackctl.plan, "
            "stackctl.render.human, stackctl.apply")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1].strip()), parts[2].rstrip()))
    top = sorted(rows, key=lambda r: -r[0])
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    t_imports = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    t_bare = time.perf_counter() - t0
    lines = [f"interpreter + imports of a plan: {1000 * t_imports:.0f} ms (bare interpreter {1000 * t_bare:.0f} ms)",
             "largest cumulative import times (us):"]
    lines += [f"  {us:8d}  {name}" for us, name in top[:15]]
    return "### imports\n\n```\n" + "\n".join(lines) + "\n```\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, default=50)
    p.add_argument("--out", default="/tmp/stackctl-profile", help="directory for profiles (default /tmp/stackctl-profile)")
    p.add_argument("--py-spy", action="store_true", help="also sample the CLI subprocesses with py-spy")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    api = docker.from_env().api
    stacks.remove_all(api, "stackctl")
    work = Path(tempfile.mkdtemp(prefix="stackctl-profile-"))
    spec = work / "spec"
    ports = stacks.free_ports(args.groups)
    report = [f"# stackctl profile, N = {args.groups} groups ({3 * args.groups} containers)\n"]
    try:
        stacks.write_stackctl_spec(spec, ports)
        report.append(profiled("cold-apply", ["apply", "--auto-approve", str(spec)], out))
        report.append(profiled("noop-plan", ["plan", str(spec)], out))
        stacks.write_stackctl_spec(spec, ports, stage=1)
        report.append(profiled("sysctl-change-one-group", ["apply", "--auto-approve", str(spec)], out))
        stacks.write_stackctl_spec(spec, ports, stage=2)
        report.append(profiled("sysctl-change-every-group", ["apply", "--auto-approve", str(spec)], out))
        report.append(profiled("destroy", ["destroy", "--auto-approve", str(spec)], out))
        if args.py_spy:
            stacks.write_stackctl_spec(spec, ports)
            report.append(pyspy("cold-apply", ["apply", "--auto-approve", str(spec)], out))
            report.append(pyspy("noop-plan", ["plan", str(spec)], out))
            report.append(pyspy("destroy", ["destroy", "--auto-approve", str(spec)], out))
        report.append(import_cost())
    finally:
        stacks.remove_all(api, "stackctl")
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(report)
    (out / "profile.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
