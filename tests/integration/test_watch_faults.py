"""`stackctl watch` under faults, against the real engine: a failing stack backs off while
the others converge; --git fast-forwards and refuses a diverged checkout; a removed stack
is reported, or destroyed with --prune; dockerd stopped and started again."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from support import ROOT, free_port, http_get, live_sysctl, netns
from test_watch import Agent, _converged, _web, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.fault]


def _cleanup(client, *stacks: str) -> None:
    for stack in stacks:
        for c in client.containers.list(all=True, filters={"label": f"stackctl.stack={stack}"}):
            try:
                c.remove(force=True)
            except Exception:
                pass


def test_failing_stack_backs_off_while_the_others_converge(docker_client, tmp_path, stack_name, port):
    bad, good = f"{stack_name}", f"{stack_name}ok"
    (tmp_path / bad).mkdir()
    (tmp_path / good).mkdir()
    (tmp_path / bad / "s.toml").write_text(_web(bad, port))
    good_port = free_port()
    (tmp_path / good / "s.toml").write_text(_web(good, good_port))
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    a = Agent([tmp_path])
    try:
        wait_for("the healthy stack converged", lambda: "hello" in http_get(good_port, timeout=0.5), a)
        wait_for("three failures", lambda: len(a.events("converge-failed")) >= 3, a, timeout=60)
        waits = [re.search(r"retrying in (\S+)s", r["reason"]).group(1)  # type: ignore[union-attr]
                 for r in a.events("converge-failed")[:3]]
        assert waits == ["1", "2", "4"], a.dump()
        # ... and the retries really wait that long: no hot loop (a lower bound by
        # construction, not a speed claim).
        stamps = [datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
                  for r in a.events("converge-failed")[:3]]
        gaps = [(later - earlier).total_seconds() for earlier, later in zip(stamps, stamps[1:])]
        assert gaps[0] >= 1.0 and gaps[1] >= 2.0, gaps
        # Refused by the port preflight before anything is created.
        assert "is in use" in a.events("converge-failed")[0]["error"]
        doc = a.stack(bad)
        assert doc["state"] == "failing" and doc["failures"] >= 3
        assert a.stack(good)["state"] == "in-sync"
        holder.close()
        wait_for("the failing stack converged once the port is free",
                 lambda: "hello" in http_get(port, timeout=0.5), a, timeout=60)
        assert 'stackctl_converge_failures_total{stack="%s"}' % bad in a.metrics()
    finally:
        holder.close()
        a.stop()
        _cleanup(docker_client, good)


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_git_fast_forwards_and_leaves_a_diverged_checkout_alone(docker_client, tmp_path, stack_name, port):
    up, work, checkout = tmp_path / "up.git", tmp_path / "work", tmp_path / "checkout"
    _git(tmp_path, "init", "-q", "--bare", str(up))
    _git(tmp_path, "clone", "-q", str(up), str(work))
    (work / "specs" / stack_name).mkdir(parents=True)
    spec = work / "specs" / stack_name / "stack.toml"
    spec.write_text(_web(stack_name, port, somaxconn=1111))
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "first")
    _git(work, "push", "-q", "origin", "HEAD")
    _git(tmp_path, "clone", "-q", str(up), str(checkout))
    a = Agent([checkout / "specs"], "--git", "--interval", "1s")
    try:
        wait_for("the first converge", _converged(a, stack_name), a)
        assert a.stack(stack_name)["commit"] == _git(work, "rev-parse", "HEAD")
        spec.write_text(_web(stack_name, port, somaxconn=1212))
        _git(work, "commit", "-qam", "more connections")
        _git(work, "push", "-q", "origin", "HEAD")
        second = _git(work, "rev-parse", "HEAD")
        owner = f"{stack_name}-web"
        wait_for("the new commit converged", lambda: a.stack(stack_name)["commit"] == second, a)
        assert live_sysctl(docker_client, owner, "net.core.somaxconn") == "1212"
        assert a.events("git-pull"), a.dump()

        (checkout / "LOCAL").write_text("a local commit")  # the checkout diverges
        _git(checkout, "add", "LOCAL")
        _git(checkout, "commit", "-qm", "local")
        local = _git(checkout, "rev-parse", "HEAD")
        spec.write_text(_web(stack_name, port, somaxconn=1313))
        _git(work, "commit", "-qam", "upstream moves on")
        _git(work, "push", "-q", "origin", "HEAD")
        wait_for("the divergence reported", lambda: any("diverged" in r.get("reason", "")
                                                        for r in a.events("git-error")), a)
        assert _git(checkout, "rev-parse", "HEAD") == local, "never reset, merged or rebased"
        assert live_sysctl(docker_client, owner, "net.core.somaxconn") == "1212"
    finally:
        a.stop()


def test_removed_stack_is_reported_and_destroyed_only_with_prune(docker_client, tmp_path, stack_name):
    keep, gone = f"{stack_name}", f"{stack_name}x"
    for name in (keep, gone):
        (tmp_path / name).mkdir()
        (tmp_path / name / "s.toml").write_text(_web(name, free_port()))
    try:
        a = Agent([tmp_path])
        wait_for("both converged", lambda: _converged(a, keep)() and _converged(a, gone)(), a)
        (tmp_path / gone / "s.toml").rename(tmp_path / "aside.toml")
        wait_for("the removal reported", lambda: a.events("stack-removed"), a)
        assert "--prune" in a.events("stack-removed")[0]["reason"]
        assert a.stop() == 0
        assert len(docker_client.containers.list(filters={"label": f"stackctl.stack={gone}"})) == 2

        (tmp_path / "aside.toml").rename(tmp_path / gone / "s.toml")
        b = Agent([tmp_path], "--prune")
        wait_for("both converged", lambda: _converged(b, keep)() and _converged(b, gone)(), b)
        (tmp_path / gone / "s.toml").unlink()
        wait_for("the removed stack destroyed", lambda: not docker_client.containers.list(
            all=True, filters={"label": f"stackctl.stack={gone}"}), b)
        assert len(docker_client.containers.list(filters={"label": f"stackctl.stack={keep}"})) == 2
        assert b.stop() == 0
    finally:
        _cleanup(docker_client, gone)


def _dockerd_pids() -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "dockerd":
                pids.append(int(comm.parent.name))
        except OSError:
            pass
    return pids


@pytest.mark.skipif(os.geteuid() != 0, reason="stopping and starting dockerd needs root")
def test_dockerd_stopped_and_started_again_the_agent_survives_and_converges(docker_client, tmp_path,
                                                                           stack_name, port):
    """Stops the shared engine for a few seconds (SIGTERM, as a service manager would) and
    starts it again with scripts/engine-up, which the finally block always runs."""
    (tmp_path / stack_name).mkdir()
    (tmp_path / stack_name / "s.toml").write_text(_web(stack_name, port))
    a = Agent([tmp_path])
    try:
        wait_for("the first converge", _converged(a, stack_name), a)
        pids = _dockerd_pids()
        assert len(pids) == 1, pids
        try:
            os.kill(pids[0], 15)
            deadline = time.monotonic() + 60
            while Path(f"/proc/{pids[0]}").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            wait_for("the agent to see the engine gone", lambda: a.events("engine-unavailable"), a)
            assert a.health()[0] == 503
        finally:
            up = subprocess.run([str(ROOT / "scripts/engine-up")], capture_output=True, text=True)
            assert up.returncode == 0, up.stdout + up.stderr
        wait_for("the event stream reopened", lambda: a.events("engine-available"), a, timeout=120)
        wait_for("the stack serving again", lambda: "hello" in http_get(port, timeout=0.5)
                 and netns(docker_client, f"{stack_name}-web-httpd")
                 == netns(docker_client, f"{stack_name}-web"), a, timeout=120)
        wait_for("in sync and healthy", lambda: _converged(a, stack_name)() and a.health()[0] == 200, a)
        assert a.proc.poll() is None, "the agent survived"
    finally:
        a.stop()
