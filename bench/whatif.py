#!/usr/bin/env python3
"""What-if experiments: measure proposed changes to stackctl *without* editing stackctl.

    python bench/whatif.py [--groups 50] [--only cold,destroy,engine-destroy,observe,write]

Each experiment runs the benchmark stack (bench/stacks.py) and compares stackctl as it is
with a variant (an option, or the piece of work a proposal would do instead), alternating
the two so that drift on a shared engine hits both:

cold            cold ``apply`` with ``--parallelism`` 10 (the default), 20 and 5; and
                ``destroy`` with ``--parallelism`` 10 and 20.
engine-destroy  the engine alone (docker-py): force-remove all in parallel, members then
                owners, kill all then remove.
observe         the pieces of a no-op plan at N groups: list only, list + inspect of the
                owners only (the requests ``observe`` sends now), list + inspect of every
                container (before 8d0fee3; ``--refresh=full`` still does), ``observe()`` as it
                is, with its requests and processes counted, the /proc scan that maps
                container ids to pids, live sysctls read in-process with setns (as now) vs.
                the historical ways: one nsenter per group from a thread pool (before 8d0fee3)
                and one shell running every nsenter; and import times.
write           one sysctl write: ``Engine.write_sysctls`` as it is (in-process read-back,
                then the helper container when the values differ) vs. nsenter ``sysctl -w``
                (an alternative, not taken).
engine-cpu      how busy the machine's CPUs are while the docker-py bound creates the stack,
                and which processes burn it: is the engine itself the limit?

Prints one table per experiment. Containers are ``benchs-*`` / ``benchd-*`` and removed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # noqa: E402

import docker  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cli(argv: list[str]) -> float:
    """Run stackctl's CLI in process; return wall seconds; raise on a non-zero exit."""
    import stackctl.cli

    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        rc = stackctl.cli.main(argv)
    dt = time.perf_counter() - t0
    if rc not in (0, 2):
        raise RuntimeError(f"stackctl {' '.join(argv)} exited {rc}:\n{buf.getvalue()[-2000:]}")
    return dt


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} s" + (f" (n={len(xs)}: " + ", ".join(f"{x:.2f}" for x in xs) + ")" if len(xs) > 1 else "")


def exp_cold(n: int, spec: Path, ports: list[int], reps: int) -> list[str]:
    variants: dict[str, tuple[list[str], Callable[[], Any]]] = {
        "as is (--parallelism 10, the default)": ([], contextlib.nullcontext),
        "--parallelism 20": (["--parallelism", "20"], contextlib.nullcontext),
        "--parallelism 5": (["--parallelism", "5"], contextlib.nullcontext),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    down: dict[str, list[float]] = {"as is (--parallelism 10)": [], "--parallelism 20": []}
    stacks.write_stackctl_spec(spec, ports)
    for rep in range(reps):
        for label, (extra, ctx) in variants.items():
            log(f"cold apply N={n}: {label}")
            with ctx():
                times[label].append(cli(["apply", "--auto-approve", *extra, str(spec)]))
            time.sleep(2)
            a, b = down
            dlabel = a if len(down[a]) <= len(down[b]) else b
            log(f"destroy N={n}: {dlabel}")
            extra = [] if dlabel == a else ["--parallelism", "20"]
            down[dlabel].append(cli(["destroy", "--auto-approve", *extra, str(spec)]))
            time.sleep(2)
    rows = [f"### cold apply and destroy, stackctl in process, N = {n}", "",
            "| variant | median wall |", "|---|---:|"]
    rows += [f"| apply: {k} | {med(v)} |" for k, v in times.items()]
    rows += [f"| destroy: {k} | {med(v)} |" for k, v in down.items()]
    return rows


def exp_engine_destroy(api: Any, n: int, ports: list[int], reps: int) -> list[str]:
    groups = stacks.group_names(n)

    def up() -> None:
        with ThreadPoolExecutor(16) as pool:
            def cs(kw: dict[str, Any]) -> None:
                api.start(api.create_container(**kw)["Id"])
            list(pool.map(cs, [stacks.dockerpy_owner(api, g, p) for g, p in zip(groups, ports)]))
            list(pool.map(cs, [stacks.dockerpy_member(api, g, m) for g in groups for m in stacks.MEMBERS]))

    def listed() -> list[dict[str, Any]]:
        return api.containers(all=True, filters={"label": stacks.LABEL_FILTERS["docker-py"]})

    def rm_all(workers: int) -> Callable[[], None]:
        def f() -> None:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda c: api.remove_container(c["Id"], force=True), listed()))
        return f

    def members_then_owners() -> None:
        cs = listed()
        with ThreadPoolExecutor(16) as pool:
            for role in ("member", "owner"):
                list(pool.map(lambda c: api.remove_container(c["Id"], force=True),
                              [c for c in cs if c["Labels"].get("bench.role") == role]))

    def kill_then_remove() -> None:
        cs = listed()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda c: api.kill(c["Id"]), cs))
            list(pool.map(lambda c: api.remove_container(c["Id"]), cs))

    variants = {"force-remove all, 10 threads (stackctl's parallelism)": rm_all(10),
                "force-remove all, 16 threads": rm_all(16),
                "members, then owners, 16 threads": members_then_owners,
                "kill all, then remove all, 16 threads": kill_then_remove}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for rep in range(reps):
        for label, f in variants.items():
            up()
            time.sleep(2)
            log(f"engine destroy N={n}: {label}")
            t0 = time.perf_counter()
            f()
            times[label].append(time.perf_counter() - t0)
            stacks.remove_all(api, "docker-py")
            time.sleep(2)
    return [f"### destroy, the engine alone (docker-py), N = {n}", "", "| variant | median wall |", "|---|---:|",
            *[f"| {k} | {med(v)} |" for k, v in times.items()]]


def _proc_cpu(names: tuple[str, ...]) -> dict[str, int]:
    """Clock ticks of user+system time so far, per long-lived process name."""
    out = {n: 0 for n in names}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        if comm in out:
            fields = raw[raw.rindex(")") + 2:].split()
            out[comm] += int(fields[11]) + int(fields[12])
    return out


def _machine_ticks() -> tuple[int, int, int]:
    """(all, idle, kernel) clock ticks of the machine so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4], fields[2] + fields[5] + fields[6]


def exp_engine_cpu(api: Any, n: int, ports: list[int]) -> list[str]:
    """Is the engine CPU-bound during the docker-py bound? Machine busy %, by process."""
    groups = stacks.group_names(n)
    names = ("dockerd", "containerd", "docker-proxy", "containerd-shim", "runc", "python")
    hz = os.sysconf("SC_CLK_TCK")
    t0, i0, k0 = _machine_ticks()
    p0 = _proc_cpu(names)
    w0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        def group(g: str, port: int) -> None:
            api.start(api.create_container(**stacks.dockerpy_owner(api, g, port))["Id"])
            for m in stacks.MEMBERS:
                api.start(api.create_container(**stacks.dockerpy_member(api, g, m))["Id"])
        list(pool.map(lambda gp: group(*gp), zip(groups, ports)))
    wall = time.perf_counter() - w0
    t1, i1, k1 = _machine_ticks()
    p1 = _proc_cpu(names)
    stacks.remove_all(api, "docker-py")
    busy = 1 - (i1 - i0) / max(1, t1 - t0)
    cores = os.cpu_count() or 1
    rows = [f"### CPU during the docker-py bound (create+start {3 * n} containers), N = {n}", "",
            f"wall {wall:.2f} s; machine CPU busy {busy:.0%} of {cores} cores "
            f"({busy * cores * wall:.1f} CPU-seconds, {(k1 - k0) / max(1, t1 - i1 - t0 + i0):.0%} of it in the kernel)", "",
            "| process (long-lived ones; short-lived runc, shims and iptables are in the rest) | CPU-seconds |", "|---|---:|"]
    accounted = 0.0
    for name in names:
        sec = (p1[name] - p0[name]) / hz
        accounted += sec
        rows.append(f"| {name} | {sec:.1f} |")
    rows.append(f"| everything else (short-lived processes, kernel) | {max(0.0, busy * cores * wall - accounted):.1f} |")
    return rows


def _counted(f: Callable[[], Any]) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """Run ``f`` once; return (engine requests by (endpoint, transport), processes started
    by program). Transports: ``socket`` (stackctl's stdlib client) and ``docker-py``."""
    import threading
    from collections import Counter

    from run import engine_requests, spawned_processes

    requests: Counter[tuple[str, str]] = Counter()
    procs: Counter[str] = Counter()
    lock = threading.Lock()

    def request(transport: str, endpoint: str, seconds: float) -> None:
        with lock:
            requests[(endpoint, transport)] += 1

    def spawned(program: str) -> None:
        with lock:
            procs[program] += 1

    with engine_requests(request), spawned_processes(spawned):
        f()
    return dict(requests), dict(procs)


def _describe(requests: dict[tuple[str, str], int], procs: dict[str, int]) -> str:
    """"12 requests (`GET /x` x1, ...), 0 processes": what was counted, as counted."""
    def plural(k: int, word: str) -> str:
        return f"{k} {word}{'' if k == 1 else 'es' if word.endswith('s') else 's'}"

    eps = ", ".join(f"`{ep}`{' (docker-py)' if transport != 'socket' else ''} x{v}"
                    for (ep, transport), v in sorted(requests.items(), key=lambda kv: (kv[0][1] != 'socket', kv[0][0])))
    started = ", ".join(f"{k} x{v}" for k, v in sorted(procs.items()))
    return (f"{plural(sum(requests.values()), 'request')}{f' ({eps})' if eps else ''}, "
            f"{plural(sum(procs.values()), 'process')}{f' ({started})' if started else ''}")


def exp_observe(api: Any, n: int, spec: Path, ports: list[int]) -> list[str]:
    import stackctl.engine
    from stackctl.engine import namespaces
    from stackctl.resources import LABEL_STACK

    stacks.write_stackctl_spec(spec, ports)
    log(f"observe N={n}: applying the stack")
    cli(["apply", "--auto-approve", str(spec)])
    time.sleep(2)
    engine = stackctl.engine.connect()
    flt = {"label": f"{LABEL_STACK}={stacks.STACKCTL_STACK}"}
    rows = [f"### pieces of a no-op plan, N = {n} ({3 * n} containers), median of 5", "",
            "| piece | median | requests / processes |", "|---|---:|---|"]

    def timeit(f: Callable[[], Any], k: int = 5) -> float:
        xs = []
        for _ in range(k):
            t0 = time.perf_counter()
            f()
            xs.append(time.perf_counter() - t0)
        return statistics.median(xs)

    listed = api.containers(all=True, filters=flt)
    owners = [c for c in listed if c["Labels"].get("stackctl.role") == "owner"]
    members = [c for c in listed if c["Labels"].get("stackctl.role") == "member"]
    keys = sorted(stacks.sysctls())
    sysctl_keys = {g: keys for g in stacks.group_names(n)}
    with ThreadPoolExecutor(8) as pool:
        def inspect_owners() -> None:
            list(pool.map(api.inspect_container, [c["Id"] for c in api.containers(all=True, filters=flt)
                                                  if c["Labels"].get("stackctl.role") == "owner"]))

        def inspect_all() -> None:
            list(pool.map(api.inspect_container, [c["Id"] for c in api.containers(all=True, filters=flt)]))

        rows.append(f"| list only (`GET /containers/json`, label filter), docker-py | "
                    f"{1000 * timeit(lambda: api.containers(all=True, filters=flt)):.0f} ms | 1 |")
        rows.append(f"| list + inspect owners only, docker-py, 8 threads (the requests observe() sends now) | "
                    f"{1000 * timeit(inspect_owners):.0f} ms | {1 + len(owners)} |")
        rows.append(f"| list + inspect every container, docker-py, 8 threads (observe() before 8d0fee3; "
                    f"`--refresh=full` and saved plans still inspect every container) | "
                    f"{1000 * timeit(inspect_all):.0f} ms | {1 + len(listed)} |")
        pids = [api.inspect_container(c["Id"])["State"]["Pid"] for c in owners]

    def observe() -> Any:
        return engine.observe(stacks.STACKCTL_STACK, sysctl_keys)

    def observe_full() -> Any:
        return engine.observe(stacks.STACKCTL_STACK, sysctl_keys, inspect_all=True)

    observed = observe()
    if len(observed.sysctls) != n:
        log(f"observe N={n}: live sysctls read for {len(observed.sysctls)} of {n} groups")
    rows.append(f"| observe() as now, with live sysctls (expected: 3 lists + {n} owner inspects; members from "
                f"the listing and /proc; sysctls read in-process, no process) | {1000 * timeit(observe):.0f} ms | "
                f"{_describe(*_counted(observe))}; sysctls of {len(observed.sysctls)}/{n} groups |")
    rows.append(f"| observe(inspect_all=True) (`--refresh=full`), with live sysctls | "
                f"{1000 * timeit(observe_full):.0f} ms | {_describe(*_counted(observe_full))} |")

    running = [c["Id"] for c in members if c.get("State") == "running"]
    found = namespaces.container_pids(running)
    rows.append(f"| members' pids by a scan of every /proc/*/cgroup (`namespaces.container_pids` without a known container; the fallback) | "
                f"{1000 * timeit(lambda: namespaces.container_pids(running)):.0f} ms | "
                f"0 requests; found {len(found)}/{len(running)} |")
    if pids:
        known = (pids[0], owners[0]["Id"])
        direct = namespaces.container_pids(running, known)
        rows.append(f"| members' pids from their cgroup directories, next to a known owner's (as now, in observe) | "
                    f"{1000 * timeit(lambda: namespaces.container_pids(running, known)):.0f} ms | "
                    f"0 requests; found {len(direct)}/{len(running)} |")
    paths = ["/proc/sys/" + k.replace(".", "/") for k in keys]
    jobs = [(pid, o["Id"], keys) for pid, o in zip(pids, owners)]
    read = namespaces.read_sysctls(jobs)
    rows.append(f"| live sysctls: in-process setns, `namespaces.read_sysctls` of {len(jobs)} owners (as now) | "
                f"{1000 * timeit(lambda: namespaces.read_sysctls(jobs)):.1f} ms | "
                f"{_describe(*_counted(lambda: namespaces.read_sysctls(jobs)))}; read {sum(1 for r in read if r)}/{len(jobs)} |")

    def nsenter_pool() -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda pid: subprocess.run(["nsenter", "--target", str(pid), "--net", "--ipc", "--",
                                                      "grep", "-H", "-s", "", *paths], capture_output=True), pids))

    script = 'for p in "$@"; do nsenter --target "$p" --net --ipc -- grep -H -s "" ' + " ".join(paths) + ' | sed "s/^/$p:/"; done'

    def nsenter_one_shell() -> None:
        subprocess.run(["sh", "-c", script, "sh", *map(str, pids)], capture_output=True, check=True)

    rows.append(f"| live sysctls: one nsenter per group from 8 threads (historical: observe() before 8d0fee3) | "
                f"{1000 * timeit(nsenter_pool):.0f} ms | {len(pids)} nsenter |")
    rows.append(f"| live sysctls: one `sh` running every nsenter (historical alternative, not taken) | "
                f"{1000 * timeit(nsenter_one_shell):.0f} ms | 1 sh, {len(pids)} nsenter |")

    def imports(code: str) -> float:
        return timeit(lambda: subprocess.run([sys.executable, "-c", code], check=True))

    base = "import attrs, cattrs, docker, stackctl.cli, stackctl.errors, stackctl.spec.model, stackctl.spec.converter"
    full = ("import stackctl.cli, stackctl.spec, stackctl.engine, stackctl.plan, stackctl.render.human, "
            "stackctl.apply")
    probe = subprocess.run([sys.executable, "-c", full + "; import sys; print('docker' in sys.modules, "
                            "'networkx' in sys.modules)"], capture_output=True, text=True, check=True).stdout.split()
    has = ", ".join(f"{name} {'imported' if flag == 'True' else 'not imported'}"
                    for name, flag in zip(("docker-py", "networkx"), probe))
    rows.append(f"| interpreter only (`python -c pass`) | {1000 * imports('pass'):.0f} ms | |")
    rows.append(f"| interpreter + stackctl.cli, spec, engine, plan, render.human (what a plan imports, as now) "
                f"and apply | {1000 * imports(full):.0f} ms | {has} |")
    rows.append(f"| interpreter + `import networkx` | {1000 * imports('import networkx'):.0f} ms | |")
    rows.append(f"| interpreter + `import docker` (an apply pays it on its first action) | "
                f"{1000 * imports('import docker'):.0f} ms | |")
    rows.append(f"| interpreter + docker, attrs, cattrs, cli, spec model/converter (historical: the no-networkx "
                f"proposal, when plans still imported docker-py) | {1000 * imports(base):.0f} ms | |")
    log(f"observe N={n}: destroying")
    cli(["destroy", "--auto-approve", str(spec)])
    return rows


def exp_write(api: Any, spec: Path, ports: list[int]) -> list[str]:
    import stackctl.engine
    from stackctl.resources import desired
    from stackctl.spec import load

    stacks.write_stackctl_spec(spec, ports[:1])
    cli(["apply", "--auto-approve", str(spec)])
    engine = stackctl.engine.connect()
    helper = next(r for r in desired(load(str(spec)).stack) if r.role.value == "helper")
    owner = f"{stacks.STACKCTL_STACK}-g000"
    pid = api.inspect_container(owner)["State"]["Pid"]
    owner_id = api.inspect_container(owner)["Id"]
    import attrs

    # The values the owner was created with are live: write_sysctls reads them back
    # in-process and runs no helper.
    same = [0.0] * 5
    for i in range(5):
        t0 = time.perf_counter()
        engine.write_sysctls(stacks.STACKCTL_STACK, helper, owner_id, skip_if_live=True)
        same[i] = time.perf_counter() - t0
    same_counts = _describe(*_counted(lambda: engine.write_sysctls(stacks.STACKCTL_STACK, helper, owner_id, skip_if_live=True)))
    xs, ys = [], []
    helper_counts = ""
    for i in range(5):
        # A value the namespace does not have yet, so the helper really runs.
        changed = attrs.evolve(helper, config={"sysctls": {**helper.config["sysctls"],
                                                           "net.core.somaxconn": str(1100 + i)}})
        t0 = time.perf_counter()
        if i == 4:
            helper_counts = _describe(*_counted(lambda: engine.write_sysctls(stacks.STACKCTL_STACK, changed, owner_id, skip_if_live=True)))
        else:
            engine.write_sysctls(stacks.STACKCTL_STACK, changed, owner_id, skip_if_live=True)
        xs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        args = [f"{k}={v}" for k, v in helper.config["sysctls"].items()]
        subprocess.run(["nsenter", "--target", str(pid), "--net", "--ipc", "--", "sh", "-c",
                        'for kv in "$@"; do echo "${kv#*=}" > "/proc/sys/$(echo "${kv%%=*}" | tr . /)"; done; '
                        'for kv in "$@"; do k="${kv%%=*}"; printf "%s=%s\\n" "$k" "$(cat /proc/sys/$(echo "$k" | tr . /))"; done',
                        "sh", *args], check=True, capture_output=True)
        ys.append(time.perf_counter() - t0)
    cli(["destroy", "--auto-approve", str(spec)])
    return ["### one group's sysctls written and read back", "", "| way | median | requests / processes (one run) |",
            "|---|---:|---|",
            f"| `Engine.write_sysctls`, values already live (as now after a create: in-process read-back only) | "
            f"{1000 * statistics.median(same):.1f} ms | {same_counts} |",
            f"| `Engine.write_sysctls`, a value differs (as now: in-process read-back, then the helper container) | "
            f"{1000 * statistics.median(xs):.0f} ms | {helper_counts} |",
            f"| nsenter into the owner's pid (an alternative, not taken; local engine, root) | "
            f"{1000 * statistics.median(ys):.0f} ms | 0 requests; 1 process from Python (nsenter, which runs sh) |"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, default=50)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--only", default="write,observe,cold,engine-destroy,engine-cpu",
                   help="comma-separated experiments (default: all)")
    args = p.parse_args()
    only = set(args.only.split(","))
    api = docker.from_env(max_pool_size=20).api
    for way in ("stackctl", "docker-py"):
        stacks.remove_all(api, way)
    work = Path(tempfile.mkdtemp(prefix="stackctl-whatif-"))
    spec = work / "spec"
    ports = stacks.free_ports(args.groups)
    out: list[str] = []
    try:
        if "write" in only:
            out += exp_write(api, spec, ports) + [""]
        if "observe" in only:
            out += exp_observe(api, args.groups, spec, ports) + [""]
        if "cold" in only:
            out += exp_cold(args.groups, spec, ports, args.repeat) + [""]
        if "engine-cpu" in only:
            out += exp_engine_cpu(api, args.groups, ports) + [""]
        if "engine-destroy" in only:
            out += exp_engine_destroy(api, args.groups, ports, args.repeat) + [""]
    finally:
        for way in ("stackctl", "docker-py"):
            stacks.remove_all(api, way)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
