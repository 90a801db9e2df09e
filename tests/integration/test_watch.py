"""`stackctl watch` against the real engine, checked from outside: the port serves again,
containers exist with the right namespace, live sysctls hold the spec's values, /healthz
says what happened. No stackctl command is run while the agent heals; waits are bounded
polls, never timing asserts (heal latency is measured in bench/)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from support import (HTTPD, ROOT, free_port, http_get, live_sysctl, netns, spec_text,
                     write_sysctl_by_hand)

pytestmark = [pytest.mark.engine]


class Agent:
    """A `stackctl watch` process, its JSON log lines collected as they come."""

    def __init__(self, paths: list[Path], *args: str) -> None:
        self.listen = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackctl", "watch", *map(str, paths), "--log-format", "json",
             "--listen", f"127.0.0.1:{self.listen}", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}, cwd=ROOT)
        self.lines: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"event": "unparsed", "reason": line})

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in list(self.lines) if r.get("event") == event]

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.listen}/healthz", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stack(self, name: str) -> dict[str, Any]:
        return self.health()[1]["stacks"].get(name, {})

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.listen}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def dump(self) -> str:
        err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        return "\n".join(json.dumps(r) for r in self.lines[-40:]) + err


def wait_for(what: str, check: Callable[[], bool], agent: Agent, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, KeyError, AssertionError):
            pass
        if agent.proc.poll() is not None:
            raise AssertionError(f"the agent exited ({agent.proc.returncode}) waiting for {what}:\n"
                                 + agent.dump())
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{agent.dump()}")
        time.sleep(0.2)


def _web(stack: str, port: int, somaxconn: int = 1111) -> str:
    return spec_text(stack, {"web": {"ports": [f"127.0.0.1:{port}:80"],
                                     "sysctls": {"net.core.somaxconn": somaxconn},
                                     "members": {"httpd": HTTPD}}})


@pytest.fixture
def repo(tmp_path: Path, stack_name: str, port: int) -> Path:
    """A GitOps-style repo: specs/<stack>/stack.toml."""
    d = tmp_path / "specs" / stack_name
    d.mkdir(parents=True)
    (d / "stack.toml").write_text(_web(stack_name, port))
    return tmp_path / "specs"


@pytest.fixture
def agent(repo: Path):
    started: list[Agent] = []

    def start(*args: str, paths: list[Path] | None = None) -> Agent:
        a = Agent(paths or [repo], *args)
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop(signal.SIGKILL)


def _converged(a: Agent, stack: str) -> Callable[[], bool]:
    return lambda: a.stack(stack).get("state") == "in-sync"


def _ids(client, stack: str) -> dict[str, str]:
    out = {}
    for c in client.containers.list(all=True, filters={"label": f"stackctl.stack={stack}"}):
        lab = c.labels
        out[".".join(x for x in (lab["stackctl.role"], lab.get("stackctl.group"),
                                 lab.get("stackctl.member")) if x)] = c.id
    return out


def _joined(client, stack: str) -> bool:
    return netns(client, f"{stack}-web-httpd") == netns(client, f"{stack}-web")


def test_owner_restarted_is_healed_with_no_command_run(docker_client, stack_name, port, agent):
    a = agent()
    wait_for("the first converge", _converged(a, stack_name), a)
    assert "hello" in http_get(port)
    docker_client.containers.get(f"{stack_name}-web").restart(timeout=1)
    wait_for("the member back in the owner's namespace",
             lambda: _joined(docker_client, stack_name) and "hello" in http_get(port, timeout=0.5), a)
    restarts = [r for r in a.events("change") if r.get("action") == "restart"]
    assert restarts and "dead namespace" in restarts[0]["reason"], a.dump()
    wait_for("heal latency recorded", lambda: f'stackctl_heal_seconds_count{{stack="{stack_name}"}} 1.0'
             in a.metrics(), a)


def test_member_removed_by_hand_is_recreated(docker_client, stack_name, port, agent):
    a = agent()
    wait_for("the first converge", _converged(a, stack_name), a)
    before = _ids(docker_client, stack_name)["member.web.httpd"]
    docker_client.containers.get(f"{stack_name}-web-httpd").remove(force=True)
    wait_for("a new member", lambda: _ids(docker_client, stack_name).get("member.web.httpd",
                                                                            before) != before, a)
    wait_for("the port serving", lambda: "hello" in http_get(port, timeout=0.5) and
             _joined(docker_client, stack_name), a)


def test_sysctl_changed_by_hand_is_rewritten_at_the_interval(docker_client, stack_name, agent):
    a = agent("--interval", "2s")
    wait_for("the first converge", _converged(a, stack_name), a)
    owner = f"{stack_name}-web"
    write_sysctl_by_hand(docker_client, owner, "net.core.somaxconn", "999")
    wait_for("somaxconn rewritten", lambda: live_sysctl(docker_client, owner, "net.core.somaxconn")
             == "1111", a)
    assert any(r.get("address") == "helper.web" and r.get("action") == "update"
               for r in a.events("change")), a.dump()


def test_edited_spec_is_converged_and_an_invalid_one_changes_nothing(docker_client, stack_name, port,
                                                                      repo, agent):
    a = agent()
    wait_for("the first converge", _converged(a, stack_name), a)
    spec = repo / stack_name / "stack.toml"
    owner = f"{stack_name}-web"
    ids = _ids(docker_client, stack_name)

    spec.write_text(_web(stack_name, port) + "\n[groups.web.members.httpd.bogus]\nx = 1\n")
    wait_for("/healthz reporting the invalid spec",
             lambda: a.stack(stack_name)["state"] == "invalid", a)
    status, doc = a.health()
    assert status == 200, doc
    assert "bogus" in doc["stacks"][stack_name]["last_error"]
    assert str(spec) in doc["stacks"][stack_name]["last_error"]
    assert _ids(docker_client, stack_name) == ids, "an invalid spec changed nothing"
    assert "hello" in http_get(port)

    spec.write_text(_web(stack_name, port, somaxconn=1234))
    wait_for("the edit converged", lambda: live_sysctl(docker_client, owner, "net.core.somaxconn")
             == "1234" and a.stack(stack_name)["state"] == "in-sync", a)
    assert _ids(docker_client, stack_name) == ids, "a sysctl edit is made in place"


def test_sigterm_exits_0(stack_name, agent):
    a = agent()
    wait_for("the first converge", _converged(a, stack_name), a)
    assert a.stop(signal.SIGTERM) == 0, a.dump()
    assert a.events("stopped"), a.dump()


def test_sighup_rereads_the_paths(docker_client, tmp_path, stack_name, port, repo, agent):
    a = agent()
    wait_for("the first converge", _converged(a, stack_name), a)
    second = f"{stack_name}b"
    d = repo / second
    d.mkdir()
    other = free_port()
    try:
        (d / "stack.toml").write_text(_web(second, other))
        a.proc.send_signal(signal.SIGHUP)
        wait_for("the new stack converged", lambda: "hello" in http_get(other, timeout=0.5), a)
        assert a.events("reload"), a.dump()
    finally:
        a.stop()
        for c in docker_client.containers.list(all=True, filters={"label": f"stackctl.stack={second}"}):
            c.remove(force=True)


def test_two_agents_on_one_stack_never_duplicate_a_container(docker_client, stack_name, port, agent):
    a, b = agent(), agent()
    wait_for("agent a converged", _converged(a, stack_name), a)
    wait_for("agent b converged", _converged(b, stack_name), b)
    for _ in range(3):
        docker_client.containers.get(f"{stack_name}-web").restart(timeout=1)
        wait_for("healed", lambda: _joined(docker_client, stack_name) and
                 "hello" in http_get(port, timeout=0.5), a)
    docker_client.containers.get(f"{stack_name}-web-httpd").remove(force=True)
    wait_for("recreated", lambda: "hello" in http_get(port, timeout=0.5), a)
    wait_for("both in sync", lambda: _converged(a, stack_name)() and _converged(b, stack_name)(), a)
    names = [c.name for c in docker_client.containers.list(
        all=True, filters={"label": f"stackctl.stack={stack_name}"})]
    assert sorted(names) == sorted([f"{stack_name}-web", f"{stack_name}-web-httpd"]), names


def test_sigterm_mid_converge_finishes_the_steps_under_way_and_exits_0(docker_client, tmp_path,
                                                                       stack_name):
    from support import SLEEPER, run_cli

    d = tmp_path / "mid" / stack_name
    d.mkdir(parents=True)
    (d / "stack.toml").write_text(spec_text(stack_name, {
        f"g{i}": {"sysctls": {"net.core.somaxconn": 900 + i}, "members": {"m": SLEEPER}}
        for i in range(6)}))
    a = Agent([tmp_path / "mid"])
    try:
        wait_for("the first step done", lambda: a.events("step-done"), a)
        assert a.stop(signal.SIGTERM) == 0, a.dump()
        assert a.events("stopped"), a.dump()
        # Either the converge finished before the signal, or it stopped between steps:
        # never another failure.
        assert all("interrupted before" in r.get("error", "") for r in a.events("converge-failed"))
        roles = sorted(c.labels["stackctl.role"] for c in docker_client.containers.list(
            all=True, filters={"label": f"stackctl.stack={stack_name}"}))
        assert "helper" not in roles and "lock" not in roles, roles
        assert run_cli("apply", str(d), "--auto-approve").returncode == 0
        assert run_cli("plan", str(d), "--detailed-exitcode").returncode == 0
    finally:
        a.stop(signal.SIGKILL)
