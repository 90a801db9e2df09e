#!/usr/bin/env python3
"""Benchmark of `stackctl watch`: how fast it heals, and what it costs while idle.

    python bench/watch.py [--restarts 25] [--groups 100] [--intervals 2] [--json FILE]

1. **Heal latency.** One group (owner publishing a port, a busybox httpd member). The
   agent runs as an operator runs it (``python -m stackctl watch``). Each round restarts
   the owner with ``docker restart`` (which strands the member in a dead namespace: the
   port answers nothing) and polls the port from outside every 10 ms until it serves
   again. Reported: p50/p95/max of the time from the restart request to the port serving
   (end to end, including Docker's own restart of the owner), of the restart request
   alone, and of the agent's own ``stackctl_heal_seconds`` (first engine event to stack
   converged again). No stackctl command is run between restarts.
2. **Idle cost.** A stack of N groups (bench/stacks.py's: owner, two members, two
   sysctls per group) is applied, then the agent watches it at the default interval
   (60 s) for K intervals with nothing changing. The agent runs through
   bench/agent_counted.py, which counts every engine request (both transports, as
   bench/run.py does) and every process it starts. Reported: the agent's CPU time over
   the window (utime + stime from /proc) as a percentage of one core, and the engine
   requests per interval by endpoint.

This is a benchmark, not a test: nothing here asserts on time. Every container it creates
is named ``benchw*`` and labelled; it removes exactly those.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # noqa: E402

import docker  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HEAL_STACK, IDLE_STACK = "benchwh", "benchwi"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def serves(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.2) as r:
            return r.status == 200
    except OSError:
        return False


def healthz(listen: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{listen}/healthz", timeout=2) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))
    except OSError:
        return {}


def metric(listen: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{listen}/metrics", timeout=2) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait(what: str, check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def cleanup(api: Any, stack: str) -> None:
    for c in api.containers(all=True, filters={"label": f"stackctl.stack={stack}"}):
        try:
            api.remove_container(c["Id"], force=True)
        except docker.errors.APIError:
            pass


def start_agent(args: list[str], counts: Path | None = None,
                log_file: Path | None = None) -> subprocess.Popen[str]:
    """The agent as `python -m stackctl watch`, or, with ``counts``, through
    bench/agent_counted.py, which writes its request and process counts there each second.
    Its log lines go to ``log_file`` (kept in the bench's output as ``agent_log_tail``)."""
    entry = [str(REPO / "bench" / "agent_counted.py"), str(counts)] if counts else ["-m", "stackctl"]
    out = open(log_file, "w") if log_file else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, *entry, "watch", *args, "--log-format", "json"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=out, stderr=subprocess.PIPE, text=True)


def stop_agent(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# ------------------------------------------------------------------ heal latency
def heal_latency(api: Any, work: Path, restarts: int) -> dict[str, Any]:
    port, listen = stacks.free_ports(2, start=43000)
    d = work / "heal" / HEAL_STACK
    d.mkdir(parents=True)
    (d / "stack.toml").write_text("\n".join([
        "[stack]", f'name = "{HEAL_STACK}"', "[defaults]",
        f'owner_image = "{stacks.OWNER_IMAGE}"', f'helper_image = "{stacks.HELPER_IMAGE}"',
        "[groups.web]", f'ports = ["127.0.0.1:{port}:80"]',
        'sysctls = { "net.core.somaxconn" = 1024 }',
        "[groups.web.members.httpd]", f'image = "{stacks.MEMBER_IMAGE}"',
        f"command = {json.dumps(stacks.WEB_COMMAND)}", "init = true", ""]))
    agent = start_agent([str(work / "heal"), "--listen", f"127.0.0.1:{listen}"],
                        log_file=work / "heal-agent.log")
    end_to_end, restart_call, after_restart, agent_heal = [], [], [], []
    try:
        wait("the first converge", lambda: serves(port)
             and healthz(listen).get("stacks", {}).get(HEAL_STACK, {}).get("state") == "in-sync")
        owner = f"{HEAL_STACK}-web"
        for i in range(restarts):
            before_sum = metric(listen, "stackctl_heal_seconds_sum")
            before_count = metric(listen, "stackctl_heal_seconds_count")
            t0 = time.perf_counter()
            api.restart(owner, timeout=1)
            t1 = time.perf_counter()
            while not serves(port):
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError(f"round {i}: the port did not serve again within 60 s")
                time.sleep(0.01)
            t2 = time.perf_counter()
            end_to_end.append(t2 - t0)
            restart_call.append(t1 - t0)
            after_restart.append(t2 - t1)
            try:
                wait("the agent's heal recorded", lambda: metric(
                    listen, "stackctl_heal_seconds_count") > before_count, timeout=30)
                agent_heal.append(metric(listen, "stackctl_heal_seconds_sum") - before_sum)
            except RuntimeError:
                log(f"round {i}: the port serves again, but the agent recorded no heal")
            wait("in sync", lambda: healthz(listen).get("stacks", {}).get(HEAL_STACK, {})
                 .get("state") == "in-sync")
            log(f"restart {i + 1}/{restarts}: serving again {t2 - t0:.2f}s after the restart "
                f"request (restart call {t1 - t0:.2f}s, agent heal "
                f"{agent_heal[-1] if agent_heal else float('nan'):.2f}s)")
            time.sleep(1.0)  # let the follow-up no-op plan finish: rounds are independent
    finally:
        rc = stop_agent(agent)
        cleanup(api, HEAL_STACK)

    def summary(xs: list[float]) -> dict[str, float]:
        if not xs:
            return {}
        return {"p50": round(pct(xs, 0.5), 3), "p95": round(pct(xs, 0.95), 3),
                "max": round(max(xs), 3), "mean": round(statistics.mean(xs), 3), "n": len(xs)}

    failed = [json.loads(line) for line in (work / "heal-agent.log").read_text().splitlines()
              if '"converge-failed"' in line]
    return {"restarts": restarts, "agent_exit": rc, "converge_failures": failed, "end_to_end": summary(end_to_end),
            "restart_call": summary(restart_call), "after_restart": summary(after_restart),
            "agent_heal": summary(agent_heal), "load_average": os.getloadavg()[0],
            "samples_end_to_end": [round(x, 3) for x in end_to_end]}


# --------------------------------------------------------------------- idle cost
def _cpu_seconds(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cost(api: Any, work: Path, groups: int, intervals: int, interval: float) -> dict[str, Any]:
    listen = stacks.free_ports(1, start=44000)[0]
    ports = stacks.free_ports(groups, start=45000, avoid=[listen])
    d = work / "idle" / IDLE_STACK
    spec = stacks.write_stackctl_spec(d, ports)
    spec.write_text(spec.read_text().replace(f'name = "{stacks.STACKCTL_STACK}"',
                                             f'name = "{IDLE_STACK}"'))
    counts = work / "counts.json"
    log(f"applying {groups} groups")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stackctl", "apply", str(d), "--auto-approve"], cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, capture_output=True)
    log(f"applied in {time.perf_counter() - t0:.1f}s; starting the agent")
    agent = start_agent([str(work / "idle"), "--listen", f"127.0.0.1:{listen}",
                         *(["--interval", f"{interval:g}s"] if interval != 60 else [])], counts)
    try:
        wait("the agent's first converge", lambda: healthz(listen).get("stacks", {}).get(
            IDLE_STACK, {}).get("state") == "in-sync", timeout=300)
        time.sleep(3)  # the start-up converge's follow-ups settle
        wait("the counter file", lambda: counts.exists(), timeout=10)
        first = json.loads(counts.read_text())
        cpu0, w0 = _cpu_seconds(agent.pid), time.monotonic()
        window = intervals * interval
        log(f"idle window: {window:g}s ({intervals} intervals of {interval:g}s)")
        time.sleep(window)
        cpu1, w1 = _cpu_seconds(agent.pid), time.monotonic()
        time.sleep(1.5)  # the counter file is rewritten each second
        last = json.loads(counts.read_text())
    finally:
        rc = stop_agent(agent)
        subprocess.run([sys.executable, "-m", "stackctl", "destroy", str(d), "--auto-approve"],
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
        cleanup(api, IDLE_STACK)
    by_endpoint = {k: last["by_endpoint"].get(k, 0) - first["by_endpoint"].get(k, 0)
                   for k in last["by_endpoint"]}
    by_endpoint = {k: v for k, v in by_endpoint.items() if v}
    requests = sum(by_endpoint.values())
    return {"groups": groups, "interval": interval, "intervals": intervals,
            "window_seconds": round(w1 - w0, 1), "agent_exit": rc,
            "cpu_seconds": round(cpu1 - cpu0, 3),
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (w1 - w0), 3),
            "requests": requests, "requests_per_interval": round(requests / intervals, 1),
            "by_endpoint_per_interval": {k: round(v / intervals, 1) for k, v in sorted(by_endpoint.items())},
            "processes": last["processes"] - first["processes"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--restarts", type=int, default=25)
    p.add_argument("--groups", type=int, default=100)
    p.add_argument("--intervals", type=int, default=2)
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--skip-heal", action="store_true")
    p.add_argument("--skip-idle", action="store_true")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    api = docker.from_env(timeout=300).api
    result: dict[str, Any] = {"commit": subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
        text=True).stdout.strip(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="benchw") as tmp:
        work = Path(tmp)
        if not args.skip_heal:
            result["heal"] = heal_latency(api, work, args.restarts)
            h = result["heal"]
            log(f"heal: end to end p50 {h['end_to_end']['p50']}s p95 {h['end_to_end']['p95']}s; "
                f"agent p50 {h['agent_heal']['p50']}s p95 {h['agent_heal']['p95']}s")
        if not args.skip_idle:
            result["idle"] = idle_cost(api, work, args.groups, args.intervals, args.interval)
            i = result["idle"]
            log(f"idle: {i['cpu_percent_of_one_core']}% of one core, "
                f"{i['requests_per_interval']} requests per interval, {i['processes']} processes")
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
