#!/usr/bin/env python3
"""Benchmark: the same stack of N namespace groups, three ways, side by side.

    python bench/run.py [--sizes 10,50,100] [--repeat K] [--json FILE]

For each N the stack (see bench/stacks.py: an owner with one published port and two
sysctls, two members per group) is brought up, re-run, changed, and removed:

* with stackctl, through its CLI as a subprocess (``python -m stackctl``), as an operator
  runs it: ``apply --auto-approve``, ``plan --detailed-exitcode`` (the no-op re-run, which
  reads the live sysctls of every namespace), ``apply`` after one sysctl value changed in
  one group, ``apply`` after one value changed in every group, ``destroy --auto-approve``;
* with docker-py directly, creating and starting in parallel (owners first, each group's
  members as soon as their owner runs): the lower bound of what the engine allows;
* with Docker Compose v2 (``docker compose up -d``, again, after each of the same two
  sysctl changes, ``down``).

It also counts, in process, what one stackctl no-op plan asks of the engine and the host:
every HTTP request through either transport (stackctl's stdlib socket client, which reads a
local engine, and docker-py, which it imports for actions and remote engines), every process
it starts, and the groups whose live sysctls it read in-process; and it times
``stackctl --help``. It prints a table per N with absolute seconds,
the ratios against the targets of issue 7 and PASS/FAIL. This is a benchmark, not a
test: nothing here asserts on time. Every container it creates is named ``bench*`` and
labelled; it removes exactly those, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # noqa: E402

import docker  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WAYS = ("stackctl", "docker-py", "compose")
TIMEOUT = 1800


# --------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


def run_timed(cmd: list[str], cwd: Optional[Path] = None, ok: tuple[int, ...] = (0,)) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, NO_COLOR="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if proc.returncode not in ok:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise Failed(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return dt, proc


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def cpu_busy(interval: float = 1.0) -> float:
    """Fraction of the machine's CPU time spent busy over ``interval`` seconds."""
    t0, i0 = _cpu_times()
    time.sleep(interval)
    t1, i1 = _cpu_times()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(max_wait: float, threshold: float = 0.25) -> tuple[float, float]:
    """Wait (up to ``max_wait`` s) for two quiet seconds in a row: others share this engine."""
    t0 = time.monotonic()
    quiet = 0
    busy = cpu_busy()
    while time.monotonic() - t0 < max_wait:
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= 2:
            break
        busy = cpu_busy()
    return time.monotonic() - t0, busy


def stackctl_version() -> str:
    """The commit of the stackctl package that runs, '+dirty' when its files differ from it."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "stackctl"], capture_output=True, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def foreign_containers(api: Any) -> int:
    return sum(1 for c in api.containers(all=True) if not any(n.lstrip("/").startswith("bench") for n in c["Names"]))


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def stackctl_cmd() -> list[str]:
    return [sys.executable, "-m", "stackctl"]


# ------------------------------------------------------------------- stackctl
class StackctlWay:
    name = "stackctl"

    def __init__(self, api: Any, work: Path, ports: list[int], parallelism: Optional[int]) -> None:
        self.api, self.dir, self.ports = api, work / "stackctl", ports
        self.extra = ["--parallelism", str(parallelism)] if parallelism else []

    def up(self) -> float:
        stacks.write_stackctl_spec(self.dir, self.ports)
        dt, _ = run_timed([*stackctl_cmd(), "apply", "--auto-approve", *self.extra, str(self.dir)])
        return dt

    def noop(self) -> tuple[float, str]:
        dt, proc = run_timed([*stackctl_cmd(), "plan", "--detailed-exitcode", str(self.dir)], ok=(0, 2))
        note = "" if proc.returncode == 0 else "perpetual diff: " + _plan_summary(proc.stdout)
        return dt, note

    def change(self, stage: int) -> float:
        stacks.write_stackctl_spec(self.dir, self.ports, stage)
        dt, _ = run_timed([*stackctl_cmd(), "apply", "--auto-approve", *self.extra, str(self.dir)])
        return dt

    def after_change(self) -> str:
        _, proc = run_timed([*stackctl_cmd(), "plan", "--detailed-exitcode", str(self.dir)], ok=(0, 2))
        return "" if proc.returncode == 0 else "perpetual diff after change: " + _plan_summary(proc.stdout)

    def down(self) -> float:
        dt, _ = run_timed([*stackctl_cmd(), "destroy", "--auto-approve", *self.extra, str(self.dir)])
        return dt


def _plan_summary(text: str) -> str:
    heads = [l.strip() for l in text.splitlines() if l.strip().startswith("# ")][:4]
    summary = [l for l in text.splitlines() if l.startswith("Plan:")]
    return "; ".join(heads + summary)


# ------------------------------------------------------------------ docker-py
class DockerPyWay:
    """The lower bound: create+start with a thread pool, no planning, no verification."""

    name = "docker-py"

    def __init__(self, api: Any, work: Path, ports: list[int], workers: int) -> None:
        self.api, self.ports, self.workers = api, ports, workers

    def up(self) -> float:
        api = self.api
        groups = stacks.group_names(len(self.ports))
        # Arguments are built before the clock starts: the bound is the engine's work.
        owners = {g: stacks.dockerpy_owner(api, g, p) for g, p in zip(groups, self.ports)}
        members = {g: [stacks.dockerpy_member(api, g, m) for m in stacks.MEMBERS] for g in groups}
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            def create_start(kwargs: dict[str, Any]) -> None:
                api.start(api.create_container(**kwargs)["Id"])

            def group(g: str) -> list[Any]:
                create_start(owners[g])
                return [pool.submit(create_start, kw) for kw in members[g]]

            for f in [pool.submit(group, g) for g in groups]:
                for mf in f.result():
                    mf.result()
        return time.perf_counter() - t0

    def down(self) -> float:
        t0 = time.perf_counter()
        listed = self.api.containers(all=True, filters={"label": stacks.LABEL_FILTERS[self.name]})
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(lambda c: self.api.remove_container(c["Id"], force=True), listed))
        return time.perf_counter() - t0


# -------------------------------------------------------------------- compose
class ComposeWay:
    name = "compose"

    def __init__(self, api: Any, work: Path, ports: list[int]) -> None:
        self.api, self.dir, self.ports = api, work / "compose", ports

    def _compose(self, *args: str) -> tuple[float, subprocess.CompletedProcess]:
        return run_timed(["docker", "compose", "-p", stacks.COMPOSE_PROJECT, "-f",
                          str(self.dir / "compose.yaml"), *args])

    def up(self) -> float:
        stacks.write_compose_file(self.dir, self.ports)
        return self._compose("up", "-d")[0]

    def noop(self) -> tuple[float, str]:
        dt, proc = self._compose("up", "-d")
        changed = [l for l in proc.stderr.splitlines() if re.search(r"Recreat|Creat|Start", l)]
        return dt, ("compose no-op touched containers: " + "; ".join(changed[:3])) if changed else ""

    def change(self, stage: int) -> float:
        stacks.write_compose_file(self.dir, self.ports, stage)
        return self._compose("up", "-d")[0]

    def after_change(self) -> str:
        return ""

    def down(self) -> float:
        return self._compose("down")[0]


# --------------------------------------------------------------- engine calls
_ID = re.compile(r"/containers/[^/?]+")


def _endpoint(method: str, path_url: str) -> str:
    path = path_url.split("?", 1)[0]
    path = re.sub(r"^/v\d+\.\d+", "", path)
    if path != "/containers/json" and not path.startswith("/containers/create"):
        path = _ID.sub("/containers/{id}", path)
    return f"{method} {path}"


def _docker_api_client() -> Any:
    """docker-py's APIClient class, or None when docker-py is not installed.

    Importing it here does not change what stackctl sends: this script imports docker-py
    anyway, and stackctl itself imports it only for its first action (or a remote engine);
    the per-transport counts show whether it did.
    """
    try:
        import docker.api.client as dac
    except ImportError:
        return None
    return dac.APIClient


@contextlib.contextmanager
def engine_requests(record: Callable[[str, str, float], None]) -> Iterator[None]:
    """While active, ``record(transport, endpoint, seconds)`` is called for every request
    stackctl sends the engine, from any thread, through either transport:

    - ``socket``: :meth:`stackctl.engine.socket_api.SocketApi.get`, the stdlib client that
      reads a local engine (ping, list, inspect);
    - ``docker-py``: ``docker.api.client.APIClient.send``, every action, and every read of
      a remote engine.

    ``endpoint`` is normalized by :func:`_endpoint` (``GET /containers/{id}/json``).
    ``record`` must be thread-safe.
    """
    from stackctl.engine.socket_api import SocketApi

    orig_get = SocketApi.get

    def get(self: Any, endpoint: str, params: Any = None) -> Any:
        t0 = time.perf_counter()
        try:
            return orig_get(self, endpoint, params)
        finally:
            record("socket", _endpoint("GET", endpoint), time.perf_counter() - t0)

    api_client = _docker_api_client()
    orig_send = api_client.send if api_client is not None else None

    def send(self: Any, request: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return orig_send(self, request, **kw)  # type: ignore[misc]
        finally:
            record("docker-py", _endpoint(request.method, request.path_url), time.perf_counter() - t0)

    SocketApi.get = get  # type: ignore[method-assign]
    if api_client is not None:
        api_client.send = send
    try:
        yield
    finally:
        SocketApi.get = orig_get  # type: ignore[method-assign]
        if api_client is not None:
            api_client.send = orig_send


@contextlib.contextmanager
def spawned_processes(record: Callable[[str], None]) -> Iterator[None]:
    """While active, ``record(program)`` is called for every process this Python process
    starts, from any thread and any module: through :mod:`subprocess` (run, check_output,
    Popen: all of them construct a ``Popen``), ``os.system``, ``os.posix_spawn[p]`` or
    ``os.fork``. A spawn that ``Popen`` does through ``os.posix_spawn`` counts once.
    """
    inside = threading.local()
    orig_init = subprocess.Popen.__init__

    def popen_init(self: Any, args: Any, *a: Any, **kw: Any) -> None:
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        program = kw.get("executable") or (argv[0] if argv else "?")
        if kw.get("shell"):
            program = "sh"
        record(Path(os.fsdecode(program)).name)
        inside.depth = getattr(inside, "depth", 0) + 1
        try:
            orig_init(self, args, *a, **kw)
        finally:
            inside.depth -= 1

    def os_wrapper(name: str, program: Callable[..., str]) -> tuple[str, Any, Any]:
        orig = getattr(os, name)

        def wrapper(*a: Any, **kw: Any) -> Any:
            if not getattr(inside, "depth", 0):
                record(program(*a))
            return orig(*a, **kw)
        return name, orig, wrapper

    os_patches = [os_wrapper("system", lambda cmd, *_: "sh"),
                  os_wrapper("fork", lambda *_: "fork"),
                  *[os_wrapper(n, lambda path, *_: Path(os.fsdecode(path)).name)
                    for n in ("posix_spawn", "posix_spawnp") if hasattr(os, n)]]
    subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]
    for name, _, wrapper in os_patches:
        setattr(os, name, wrapper)
    try:
        yield
    finally:
        subprocess.Popen.__init__ = orig_init  # type: ignore[method-assign]
        for name, orig, _ in os_patches:
            setattr(os, name, orig)


def count_noop_calls(spec_dir: Path) -> dict[str, Any]:
    """Run ``stackctl plan`` in process and count what it asks of the engine and the host.

    - ``requests`` / ``by_endpoint`` / ``by_transport``: every HTTP request to the engine,
      through the stdlib socket client and through docker-py (see :func:`engine_requests`);
      ``per_object`` is the part whose endpoint names one container (``{id}``),
      ``constant`` the rest, ``list`` the listings (``GET /containers/json``);
    - ``socket_api_counter``: the ``requests`` counter of stackctl's own socket client,
      a cross-check of the socket count (None when it did not connect through one);
    - ``docker_py_imported``: whether the plan imported stackctl's docker-py half (None
      when it was already imported before the plan ran, so this could not tell);
    - ``subprocesses``: processes started, by program (see :func:`spawned_processes`);
    - ``namespace_reads``: groups whose live sysctls were read in-process
      (``stackctl.engine.namespaces.read_sysctls`` jobs), and ``proc_scans``: calls of
      ``namespaces.container_pids`` (members' pids from their cgroups, or a /proc scan).
    """
    import stackctl.cli
    import stackctl.engine
    import stackctl.engine.namespaces as namespaces

    counts: Counter[str] = Counter()
    transports: Counter[str] = Counter()
    execs: Counter[str] = Counter()
    ns_calls: Counter[str] = Counter()
    lock = threading.Lock()
    orig_connect = stackctl.engine.connect
    orig_read, orig_pids = namespaces.read_sysctls, namespaces.container_pids
    engines: list[Any] = []
    docker_half = "stackctl.engine.docker_engine"
    docker_before = docker_half in sys.modules

    def request(transport: str, endpoint: str, seconds: float) -> None:
        with lock:
            counts[endpoint] += 1
            transports[transport] += 1

    def spawned(program: str) -> None:
        with lock:
            execs[program] += 1

    def connect(*a: Any, **kw: Any) -> Any:
        e = orig_connect(*a, **kw)
        engines.append(e)
        return e

    def read_sysctls(jobs: Any) -> Any:
        with lock:
            ns_calls["namespace_reads"] += len(jobs)
        return orig_read(jobs)

    def container_pids(*a: Any, **kw: Any) -> Any:
        with lock:
            ns_calls["proc_scans"] += 1
        return orig_pids(*a, **kw)

    stackctl.engine.connect = connect
    namespaces.read_sysctls, namespaces.container_pids = read_sysctls, container_pids
    out = io.StringIO()
    try:
        with engine_requests(request), spawned_processes(spawned), contextlib.redirect_stdout(out):
            rc = stackctl.cli.main(["plan", "--detailed-exitcode", str(spec_dir)])
    finally:
        stackctl.engine.connect = orig_connect
        namespaces.read_sysctls, namespaces.container_pids = orig_read, orig_pids
    counters = []
    for e in engines:  # the socket client's own count (a docker-py reader has none)
        api = getattr(getattr(e, "reader", None), "api", None)
        if isinstance(getattr(api, "requests", None), int):
            counters.append(api.requests)
    per_object = sum(v for k, v in counts.items() if "{id}" in k)
    return {
        "rc": rc, "requests": sum(counts.values()), "per_object": per_object,
        "constant": sum(counts.values()) - per_object,
        "list": counts.get("GET /containers/json", 0),
        "by_endpoint": dict(sorted(counts.items())),
        "by_transport": dict(sorted(transports.items())),
        "socket_api_counter": sum(counters) if counters else None,
        "docker_py_imported": None if docker_before else docker_half in sys.modules,
        "subprocesses": dict(execs),
        "namespace_reads": ns_calls["namespace_reads"],
        "proc_scans": ns_calls["proc_scans"],
    }


# ---------------------------------------------------------------- --help time
def help_startup(runs: int = 10) -> list[dict[str, Any]]:
    cmds: list[tuple[str, list[str]]] = [("python -m stackctl --help", [sys.executable, "-m", "stackctl", "--help"])]
    real = Path(sys.executable).parent / "stackctl"
    found = shutil.which("stackctl")
    if real.exists():
        cmds.append(("stackctl --help (console script)", [str(real), "--help"]))
    if found and Path(found).resolve() != real.resolve():
        cmds.append((f"stackctl --help (via PATH: {found})", [found, "--help"]))
    cmds.append(("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]))
    out = []
    for label, cmd in cmds:
        times = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if i:  # the first run warms the page cache
                times.append(time.perf_counter() - t0)
        out.append({"command": label, "median_ms": 1000 * median(times), "min_ms": 1000 * min(times)})
    return out


# ---------------------------------------------------------------- one cycle
def cycle(way: Any, n: int, api: Any, quiet_wait: float) -> dict[str, Any]:
    """Up, no-op (3x), sysctl change, destroy: one way at one size. Returns measures."""
    r: dict[str, Any] = {"notes": []}
    name = way.name
    waited, busy = wait_quiet(quiet_wait)
    r["before"] = {"waited_s": round(waited, 1), "cpu_busy": round(busy, 2),
                   "loadavg_1m": os.getloadavg()[0], "foreign_containers": foreign_containers(api),
                   "stackctl": stackctl_version()}
    log(f"N={n} {name}: waited {waited:.0f} s for a quiet machine (busy {busy:.0%}, "
        f"{r['before']['foreign_containers']} other containers on the engine)")
    log(f"N={n} {name}: cold apply")
    r["up"] = way.up()
    problems = stacks.verify(api, name, n)
    r["notes"] += problems
    if hasattr(way, "noop"):
        noops = []
        for _ in range(3):
            dt, note = way.noop()
            noops.append(dt)
            if note and note not in r["notes"]:
                r["notes"].append(note)
        r["noop"] = median(noops)
        r["noop_samples"] = noops
    if name == "stackctl":
        r["calls"] = count_noop_calls(way.dir)
    for stage, key in ((1, "change"), (2, "change_all")):
        if not hasattr(way, "change"):
            break
        log(f"N={n} {name}: sysctl change, stage {stage}")
        before = stacks.snapshot(api, name)
        r[key] = way.change(stage)
        after = stacks.snapshot(api, name)
        r[f"{key}_recreated"], r[f"{key}_restarted"] = stacks.disturbed(before, after)
        r["notes"] += stacks.verify(api, name, n, stage)
        note = way.after_change()
        if note and note not in r["notes"]:
            r["notes"].append(note)
    log(f"N={n} {name}: destroy")
    r["down"] = way.down()
    left = api.containers(all=True, filters={"label": stacks.LABEL_FILTERS[name]})
    if left:
        r["notes"].append(f"{len(left)} containers left after destroy")
    return r


# --------------------------------------------------------------- reporting
TARGETS = [
    # (key, label, numerator, denominator, limit)
    ("cold_raw", "cold apply / raw docker-py bound", ("stackctl", "up"), ("docker-py", "up"), 1.10),
    ("cold_compose", "cold apply / compose up", ("stackctl", "up"), ("compose", "up"), 0.80),
    ("noop", "no-op plan (live sysctls verified) / compose no-op up", ("stackctl", "noop"), ("compose", "noop"), 1.5),
    ("change", "sysctl change (one value, one group) / compose up after the same change", ("stackctl", "change"), ("compose", "change"), 0.2),
    ("change_all", "sysctl change (one value, every group) / compose up after the same change", ("stackctl", "change_all"), ("compose", "change_all"), None),
    ("destroy", "destroy / compose down", ("stackctl", "down"), ("compose", "down"), 0.80),
]


def summarize(results: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Medians over repetitions of each measure, and the ratios with verdicts."""
    rows = [r for r in results if r["n"] == n]
    med: dict[str, dict[str, float]] = {}
    for way in WAYS:
        med[way] = {}
        for key in ("up", "noop", "change", "change_recreated", "change_restarted", "change_all",
                    "change_all_recreated", "change_all_restarted", "down"):
            xs = [r[way][key] for r in rows if way in r and key in r[way]]
            if xs:
                med[way][key] = median(xs)
    ratios = {}
    for key, label, (wa, ka), (wb, kb), limit in TARGETS:
        a, b = med.get(wa, {}).get(ka), med.get(wb, {}).get(kb)
        if a is None or b is None or not b:
            ratios[key] = {"label": label, "ratio": None, "limit": limit, "pass": None}
        else:
            ratios[key] = {"label": label, "ratio": a / b, "limit": limit,
                           "pass": None if limit is None else a / b <= limit}
    calls = [r["stackctl"]["calls"] for r in rows if "stackctl" in r and "calls" in r["stackctl"]]
    befores = [r[w]["before"] for r in rows for w in WAYS if w in r and "before" in r[w]]
    versions = sorted({b.get("stackctl", "?") for b in befores})
    noise = {"stackctl_versions": versions, "max_foreign_containers": max((b["foreign_containers"] for b in befores), default=0),
             "max_cpu_busy_before": max((b["cpu_busy"] for b in befores), default=0.0),
             "cycles": len(befores)}
    return {"n": n, "median": med, "ratios": ratios, "calls": calls[-1] if calls else None, "noise": noise,
            "notes": sorted({note for r in rows for w in WAYS for note in r.get(w, {}).get("notes", [])})}


def fmt(x: Optional[float], unit: str = "s") -> str:
    if x is None:
        return "—"
    return f"{x:.2f} {unit}" if unit else f"{x:g}"


def verdict(ok: Optional[bool]) -> str:
    return "—" if ok is None else ("PASS" if ok else "**FAIL**")


def table(s: dict[str, Any], ns_for_calls: dict[int, dict[str, Any]]) -> str:
    n, m, rt = s["n"], s["median"], s["ratios"]
    g = lambda w, k: m.get(w, {}).get(k)  # noqa: E731
    lines = [
        f"#### N = {n} groups ({3 * n} containers)", "",
        "| measure | stackctl | docker-py bound | compose v2 | ratio | target | result |",
        "|---|---:|---:|---:|---:|---|---|",
    ]

    def ratio_row(key: str) -> str:
        r = rt[key]
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        limit = "(no target)" if r["limit"] is None else f"<= {r['limit']:.2f}"
        return f"| {r['label']} | | | | {ratio} | {limit} | {verdict(r['pass'])} |"

    lines.append(f"| cold apply (wall) | {fmt(g('stackctl', 'up'))} | {fmt(g('docker-py', 'up'))} | {fmt(g('compose', 'up'))} | | | |")
    lines.append(ratio_row("cold_raw"))
    lines.append(ratio_row("cold_compose"))
    lines.append(f"| no-op re-run (`plan` / `up -d`) | {fmt(g('stackctl', 'noop'))} | — | {fmt(g('compose', 'noop'))} | | | |")
    lines.append(ratio_row("noop"))
    for key, what in (("change", "one value, one group"), ("change_all", "one value, every group")):
        lines.append(f"| sysctl change, {what} (`apply` / `up -d`) | {fmt(g('stackctl', key))} | — | "
                     f"{fmt(g('compose', key))} | | | |")
        sr, sc = g("stackctl", f"{key}_recreated"), g("stackctl", f"{key}_restarted")
        cr, cc = g("compose", f"{key}_recreated"), g("compose", f"{key}_restarted")
        disturbed = None if sr is None else (sr + sc == 0)
        lines.append(f"| sysctl change, {what}: containers recreated + restarted | {fmt(sr, '')} + {fmt(sc, '')} "
                     f"| — | {fmt(cr, '')} + {fmt(cc, '')} | | 0 | {verdict(disturbed)} |")
        lines.append(ratio_row(key))
    lines.append(f"| destroy (`destroy` / remove / `down`) | {fmt(g('stackctl', 'down'))} | {fmt(g('docker-py', 'down'))} | {fmt(g('compose', 'down'))} | | | |")
    lines.append(ratio_row("destroy"))
    c = s["calls"]
    if c:
        # Target: a constant number of requests (lists, the ping) plus at most one per group.
        # "Per-object" requests are those whose endpoint names one container ({id}); the
        # rest must not grow with N, which only a run at several sizes can show.
        others = {k: v["constant"] for k, v in ns_for_calls.items() if v and k != n}
        grows = sorted(f"{v} at N = {k}" for k, v in others.items() if v != c["constant"])
        ok = c["per_object"] <= n and not grows
        if grows:
            check = f"the rest differs across sizes: {', '.join(grows)}"
        elif others:
            check = f"the rest is the same at N = {', '.join(map(str, sorted(others)))}"
        else:
            check = "one size measured: the rest not compared across sizes"
        if c["rc"] != 0:
            check += f"; the plan was not a no-op (exit {c['rc']})"
        lines.append(f"| engine requests of a no-op plan | {c['requests']}: {c['per_object']} per-container "
                     f"(`{{id}}`), {c['constant']} not ({c['list']} of them lists); {check} | | | | "
                     f"constant + <= {n} per-container | {verdict(ok)} |")
        procs = c.get("subprocesses") or {}
        names = ", ".join(f"{k} x{v}" for k, v in sorted(procs.items()))
        lines.append(f"| processes started by a no-op plan | {sum(procs.values())}{f' ({names})' if names else ''} "
                     f"| | | | (no target) | — |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    def sh(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    cpu = "?"
    with contextlib.suppress(OSError, AttributeError):
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "kernel": platform.release(),
        "docker_server": sh(["docker", "version", "--format", "{{.Server.Version}}"]),
        "docker_storage": sh(["docker", "info", "--format", "{{.Driver}}, cgroup {{.CgroupVersion}} ({{.CgroupDriver}})"]),
        "compose": sh(["docker", "compose", "version", "--short"]),
        "python": platform.python_version(), "docker_py": docker.__version__,
        "stackctl_commit": sh(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "stackctl_dirty": bool(sh(["git", "-C", str(REPO), "status", "--porcelain", "stackctl"])),
    }


# ----------------------------------------------------------------------- main
def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10,50,100", help="comma-separated group counts (default 10,50,100)")
    p.add_argument("--repeat", type=int, default=1, help="repetitions per size; medians are reported")
    p.add_argument("--json", metavar="FILE", help="also write every sample and the summary as JSON")
    p.add_argument("--ways", default=",".join(WAYS), help=f"subset of {','.join(WAYS)}")
    p.add_argument("--workers", type=int, default=16, help="docker-py thread pool size (default 16)")
    p.add_argument("--parallelism", type=int, help="pass --parallelism N to stackctl (default: its own)")
    p.add_argument("--no-help-timing", action="store_true", help="skip the --help start-up measure")
    p.add_argument("--quiet-wait", type=float, default=120, metavar="S",
                   help="before each cycle wait up to S seconds for the CPU to be idle (default 120)")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    ways = [w for w in args.ways.split(",") if w]

    client = docker.from_env(timeout=300, max_pool_size=max(10, args.workers + 4))
    api = client.api
    api.ping()
    for image in {stacks.OWNER_IMAGE, stacks.MEMBER_IMAGE, stacks.HELPER_IMAGE}:
        api.inspect_image(image)  # fails fast: run scripts/build-images
    if "compose" in ways and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        raise SystemExit("docker compose is missing: run scripts/install-compose")

    info = machine()
    log("machine: " + json.dumps(info))
    for way in WAYS:  # leftovers of an interrupted run of this benchmark (bench labels only)
        if stacks.remove_all(api, way):
            log(f"removed leftovers of an earlier {way} bench run")

    results: list[dict[str, Any]] = []
    help_rows: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="stackctl-bench-"))
    try:
        if not args.no_help_timing:
            wait_quiet(args.quiet_wait)
            help_rows = help_startup()
        for rep in range(args.repeat):
            for n in sizes:
                ports: dict[str, list[int]] = {}
                taken: list[int] = []
                for way in WAYS:
                    ports[way] = stacks.free_ports(n, avoid=taken)
                    taken += ports[way]
                row: dict[str, Any] = {"n": n, "rep": rep}
                order = ways[rep % len(ways):] + ways[:rep % len(ways)]  # rotate per repetition
                for name in order:
                    if name == "stackctl":
                        way: Any = StackctlWay(api, work, ports[name], args.parallelism)
                    elif name == "docker-py":
                        way = DockerPyWay(api, work, ports[name], args.workers)
                    else:
                        way = ComposeWay(api, work, ports[name])
                    try:
                        row[name] = cycle(way, n, api, args.quiet_wait)
                    except (Failed, docker.errors.APIError, subprocess.TimeoutExpired) as exc:
                        log(f"N={n} {name}: FAILED: {exc}")
                        row[name] = {"notes": [f"failed: {str(exc).splitlines()[0]}"], "error": str(exc)}
                    finally:
                        if stacks.remove_all(api, name):
                            log(f"N={n} {name}: cleaned up leftovers")
                        if name == "compose":
                            subprocess.run(["docker", "compose", "-p", stacks.COMPOSE_PROJECT, "down"],
                                           capture_output=True)
                    time.sleep(2)  # let the engine settle (proxies, iptables) between ways
                results.append(row)
                if args.json:  # keep partial results of long runs
                    Path(args.json).write_text(json.dumps({"machine": info, "help": help_rows,
                                                           "samples": results}, indent=1))
    finally:
        for way in WAYS:
            stacks.remove_all(api, way)
        shutil.rmtree(work, ignore_errors=True)

    summaries = [summarize(results, n) for n in sizes]
    out = ["## Results", "",
           f"Machine: {info['nproc']} cores ({info['cpu']}), {info['memory']}, Linux {info['kernel']}, "
           f"Docker {info['docker_server']} ({info['docker_storage']}), Compose {info['compose']}, "
           f"Python {info['python']}, docker-py {info['docker_py']}, stackctl at {info['stackctl_commit']}"
           f"{' (with uncommitted changes)' if info['stackctl_dirty'] else ''}; "
           f"medians of {args.repeat} run(s).", ""]
    calls_by_n = {s["n"]: s["calls"] for s in summaries if s["calls"]}
    for s in summaries:
        out += [table(s, calls_by_n), ""]
        nz = s["noise"]
        out += [f"Shared engine: up to {nz['max_foreign_containers']} containers of others present at the "
                f"start of a cycle; CPU busy before a cycle at most {nz['max_cpu_busy_before']:.0%} "
                f"({nz['cycles']} cycles). stackctl version(s) measured: {', '.join(nz['stackctl_versions'])}.", ""]
        if s["notes"]:
            out += ["Notes:", *[f"- {x}" for x in s["notes"]], ""]
    out += ["#### What one no-op `stackctl plan` asked of the engine and the host (counted in process)", "",
            "Requests through both transports (stackctl's stdlib socket client, docker-py); processes "
            "started by any means; groups whose live sysctls were read in-process (setns).", "",
            "| N | requests | per-container (`{id}`) | socket / docker-py | docker-py imported | "
            "processes started | sysctls read in-process (groups) | endpoints |",
            "|---:|---:|---:|---|---|---|---:|---|"]
    for s in summaries:
        c = s["calls"]
        if c:
            eps = ", ".join(f"`{k}` x{v}" for k, v in c["by_endpoint"].items())
            bt = c.get("by_transport", {})
            procs = c.get("subprocesses") or {}
            spawned = str(sum(procs.values())) + (" (" + ", ".join(f"{k} x{v}" for k, v in sorted(procs.items())) + ")"
                                                   if procs else "")
            imported = {True: "yes", False: "no", None: "(already imported)"}[c.get("docker_py_imported")]
            out.append(f"| {s['n']} | {c['requests']} | {c['per_object']} | {bt.get('socket', 0)} / "
                       f"{bt.get('docker-py', 0)} | {imported} | {spawned} | {c.get('namespace_reads', 0)} | {eps} |")
    if help_rows:
        out += ["", "#### Start-up: `--help`, median of 10", "", "| command | median | min | target | result |",
                "|---|---:|---:|---|---|"]
        for h in help_rows:
            target = "" if "floor" in h["command"] else "<= 150 ms"
            res = "" if not target else verdict(h["median_ms"] <= 150)
            out.append(f"| {h['command']} | {h['median_ms']:.0f} ms | {h['min_ms']:.0f} ms | {target} | {res} |")
    print("\n".join(out))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "help": help_rows, "samples": results,
                                               "summary": summaries}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
