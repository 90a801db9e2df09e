"""Fault suite: each test injects one fault against the real engine and checks that
stackctl reports it clearly (what, why, exit 1, no traceback), touches nothing it does not
own, loses nothing, and that the next plan/apply converges. The run's summary counts the
faults injected and survived."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import (BUSYBOX, HTTPD, PAUSE, SLEEPER, free_port, http_get, live_sysctl, run_cli,
                     spec_text)

pytestmark = [pytest.mark.engine, pytest.mark.fault]


def _spec(tmp_path: Path, stack: str, groups: dict, **kw) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(spec_text(stack, groups, **kw))
    return path


def _clean_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for f in fragments:
        assert f in result.stderr, result.stderr


def _by_address(client, stack: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    # sparse: one listing, no inspect per container, so a container whose removal a
    # killed stackctl left in flight cannot vanish between the listing and an inspect.
    for c in client.containers.list(all=True, sparse=True,
                                    filters={"label": f"stackctl.stack={stack}"}):
        lab = c.attrs.get("Labels") or {}
        addr = ".".join(x for x in (lab["stackctl.role"], lab.get("stackctl.group"), lab.get("stackctl.member")) if x)
        out.setdefault(addr, []).append(c.attrs.get("State") or "")
    return out


def test_engine_unreachable(tmp_path):
    spec = _spec(tmp_path, "unreach", {"g": {"members": {"m": SLEEPER}}})
    result = run_cli("plan", str(spec), env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    _clean_error(result, "cannot reach the Docker engine at tcp://127.0.0.1:1")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop DAC override (CI runs as root)")
def test_permission_denied_on_socket(tmp_path):
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    os.chmod(path, 0)
    try:
        spec = _spec(tmp_path, "perm", {"g": {"members": {"m": SLEEPER}}})
        result = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
             "--inh-caps=-dac_override,-dac_read_search",
             sys.executable, "-m", "stackctl", "plan", str(spec)],
            env={**os.environ, "DOCKER_HOST": f"unix://{path}"}, capture_output=True,
            text=True, timeout=60, stdin=subprocess.DEVNULL)
        _clean_error(result, "permission denied on the Docker socket")
    finally:
        server.close()


def test_host_port_in_use_is_refused_before_anything_changes(docker_client, stack_name, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken, ok = busy.getsockname()[1], free_port()
    try:
        spec = _spec(tmp_path, stack_name, {
            "bad": {"ports": [f"127.0.0.1:{taken}:80"], "members": {"web": HTTPD}},
            "good": {"ports": [f"127.0.0.1:{ok}:80"], "sysctls": {"net.core.somaxconn": 777},
                     "members": {"web": HTTPD}},
        })
        result = run_cli("apply", str(spec), "--auto-approve")
        _clean_error(result, "host ports are in use, so nothing was changed",
                     f"owner.bad: host port 127.0.0.1:{taken}/tcp is in use: process "
                     f"{os.getpid()} (")
        assert not _by_address(docker_client, stack_name), "nothing was created"
        plan = run_cli("plan", str(spec))
        # network.default, two owners, a helper, two members
        assert "Plan: 6 to add, 0 to change, 0 to destroy." in plan.stdout
    finally:
        busy.close()
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    assert "hello from stackctl" in http_get(ok)
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0


def test_port_change_onto_a_busy_port_destroys_nothing(docker_client, stack_name, tmp_path, port):
    """The group used to be destroyed, then fail to publish, and be left with 0
    containers. Now the preflight refuses first, naming who holds the port: another
    container's published port, or a process on this host."""
    spec = _spec(tmp_path, stack_name, {"g": {"ports": [f"127.0.0.1:{port}:80"],
                                              "members": {"web": HTTPD}}})
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    before = {c.id for c in docker_client.containers.list(filters={"label": f"stackctl.stack={stack_name}"})}
    other_port = free_port()
    squatter = docker_client.containers.run(PAUSE, detach=True, ports={"80/tcp": ("127.0.0.1", other_port)})
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen(1)
    try:
        for target, holder in ((other_port, f"published by container {squatter.name} "
                                            f"({squatter.id[:12]})"),
                               (busy.getsockname()[1], f"process {os.getpid()} (")):
            spec.write_text(spec.read_text().replace(f":{port}:80", f":{target}:80"))
            port = target
            result = run_cli("apply", str(spec), "--auto-approve")
            _clean_error(result, "nothing was changed", holder)
            after = {c.id for c in docker_client.containers.list(
                filters={"label": f"stackctl.stack={stack_name}"})}
            assert after == before, "no container was destroyed"

    finally:
        busy.close()
        squatter.remove(force=True)
    # Freed: the same change now goes through.
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    assert "hello from stackctl" in http_get(port)


def test_name_taken_by_unmanaged_container(docker_client, stack_name, tmp_path):
    squatter = docker_client.containers.run(PAUSE, name=f"{stack_name}-g", detach=True)
    try:
        spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})
        result = run_cli("apply", str(spec), "--auto-approve")
        _clean_error(result, f"{stack_name}-g", "already taken")
        squatter.reload()
        assert squatter.status == "running", "an unmanaged container is never touched"
        destroy = run_cli("destroy", str(spec), "--auto-approve")
        assert destroy.returncode == 0
        squatter.reload()
        assert squatter.status == "running"
    finally:
        squatter.remove(force=True)


def test_sysctl_the_kernel_lacks(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"g": {"sysctls": {"net.core.no_such_setting": 1},
                                              "members": {"m": SLEEPER}}})
    result = run_cli("apply", str(spec), "--auto-approve")
    _clean_error(result, f"{stack_name}-g", "no_such_setting")
    assert not _by_address(docker_client, stack_name)


def test_sysctl_value_the_kernel_rejects_in_place(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"g": {"sysctls": {"net.ipv4.ip_local_port_range": "20000 40000"},
                                              "members": {"m": SLEEPER}}})
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    before = _by_address(docker_client, stack_name)
    spec = _spec(tmp_path, stack_name, {"g": {"sysctls": {"net.ipv4.ip_local_port_range": "40000 20000"},
                                              "members": {"m": SLEEPER}}})
    result = run_cli("apply", str(spec), "--auto-approve")
    _clean_error(result, "helper.g", f"{stack_name}-g", "ip_local_port_range")
    assert _by_address(docker_client, stack_name) == before
    assert live_sysctl(docker_client, f"{stack_name}-g", "net.ipv4.ip_local_port_range") == "20000 40000"


def test_helper_image_without_sysctl(docker_client, stack_name, tmp_path):
    """The helper runs when sysctls change in place (a new owner gets them natively, and on
    a local engine they are verified without a helper): break it there."""
    spec = tmp_path / "stack.toml"
    spec.write_text(spec_text(stack_name, {"g": {"sysctls": {"net.core.somaxconn": 1500},
                                                 "members": {"m": SLEEPER}}}))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    before = _by_address(docker_client, stack_name)
    spec.write_text(spec_text(stack_name, {"g": {"sysctls": {"net.core.somaxconn": 1600},
                                                 "helper_image": PAUSE, "members": {"m": SLEEPER}}}))
    result = run_cli("apply", str(spec), "--auto-approve")
    _clean_error(result, "helper.g", "sysctl helper")
    assert _by_address(docker_client, stack_name) == before, "no helper container is left behind"
    assert live_sysctl(docker_client, f"{stack_name}-g", "net.core.somaxconn") == "1500"


def test_missing_image_changes_nothing(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    before = {c.id for c in docker_client.containers.list(filters={"label": f"stackctl.stack={stack_name}"})}
    spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": {**SLEEPER, "image": "stackctl-local/missing:0"}}}})
    result = run_cli("apply", str(spec), "--auto-approve")
    _clean_error(result, "stackctl-local/missing:0", "nothing was changed")
    after = {c.id for c in docker_client.containers.list(filters={"label": f"stackctl.stack={stack_name}"})}
    assert after == before, "the running member was not destroyed for a missing image"


def test_second_apply_refuses_while_locked_and_lock_timeout_waits(docker_client, stack_name, tmp_path):
    from stackctl.engine import connect

    spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})
    engine = connect()
    lock = engine.lock(stack_name, [BUSYBOX], "apply")
    try:
        result = run_cli("apply", str(spec), "--auto-approve")
        _clean_error(result, f"stack {stack_name!r} is locked", "force-unlock")
        assert set(_by_address(docker_client, stack_name)) == {"lock"}, "nothing was created"
        waiting = subprocess.Popen([sys.executable, "-m", "stackctl", "apply", str(spec),
                                    "--auto-approve", "--lock-timeout", "60"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
        time.sleep(1.5)
        assert waiting.poll() is None, "it waits for the lock"
    finally:
        lock.release()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, out + err
    assert "lock" not in _by_address(docker_client, stack_name), "the lock is released"


def _interrupted_apply(spec: Path, sig: int, after_lines: int) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([sys.executable, "-m", "stackctl", "apply", str(spec), "--auto-approve",
                             "--parallelism", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    seen = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Creating..." in line or "Modifying..." in line:
            seen += 1
            if seen >= after_lines:
                proc.send_signal(sig)
                break
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _many_groups(stack: str, n: int) -> dict:
    return {f"g{i}": {"sysctls": {"net.core.somaxconn": 600 + i},
                      "members": {"a": SLEEPER, "b": {**SLEEPER, "depends_on": ["a"]}}}
            for i in range(n)}


@pytest.mark.parametrize("after_lines", [1, 4, 9])
def test_sigterm_mid_apply_then_apply_converges(docker_client, stack_name, tmp_path, after_lines):
    spec = _spec(tmp_path, stack_name, _many_groups(stack_name, 5))
    result = _interrupted_apply(spec, signal.SIGTERM, after_lines)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "interrupted" in result.stderr and "Traceback" not in result.stderr
    final = run_cli("apply", str(spec), "--auto-approve")
    assert final.returncode == 0, final.stdout + final.stderr
    state = _by_address(docker_client, stack_name)
    assert all(len(v) == 1 and v[0] == "running" for v in state.values()), state
    assert len(state) == 5 * 3, "no leaked helpers, no duplicates"
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0


@pytest.mark.parametrize("after_lines", [2, 7])
def test_kill_9_mid_apply_then_the_next_apply_takes_over_and_converges(docker_client, stack_name,
                                                                        tmp_path, after_lines):
    spec = _spec(tmp_path, stack_name, _many_groups(stack_name, 5))
    result = _interrupted_apply(spec, signal.SIGKILL, after_lines)
    assert result.returncode == -signal.SIGKILL
    assert "lock" in _by_address(docker_client, stack_name), "kill -9 leaves the lock"
    final = run_cli("apply", str(spec), "--auto-approve")
    assert final.returncode == 0, final.stdout + final.stderr
    assert f"took over the lock of stack {stack_name!r}" in final.stderr
    assert "no longer runs on this host" in final.stderr, final.stderr
    state = _by_address(docker_client, stack_name)
    assert all(len(v) == 1 and v[0] == "running" for v in state.values()), state
    assert len(state) == 5 * 3
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0


# ------------------------------------------------- an impostor under the owner's name
def _impostor(docker_client, name: str):
    """An unlabelled container under ``name``, with a shareable IPC namespace as an
    owner has: what someone would start to receive the group's sysctls and members."""
    return docker_client.containers.run(BUSYBOX, ["sleep", "2147483647"], name=name,
                                        detach=True, ipc_mode="shareable", init=True)


def _somax_spec(tmp_path: Path, stack: str) -> Path:
    return _spec(tmp_path, stack, {"web": {"sysctls": {"net.core.somaxconn": "${SOMAX:-1024}"},
                                           "members": {"m": SLEEPER}}})


def test_saved_plan_refuses_an_impostor_under_the_owner_name(docker_client, stack_name, tmp_path):
    """The security review's reproduction: plan --out, rename the owner, start an
    unlabelled container under its name, apply the plan. Nothing may reach the impostor;
    its sysctl is checked from outside stackctl."""
    spec = _somax_spec(tmp_path, stack_name)
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    plan_file = tmp_path / "p1.json"
    planned = run_cli("plan", str(spec), "--out", str(plan_file), env={"SOMAX": "1025"})
    assert planned.returncode == 0, planned.stderr
    owner = docker_client.containers.get(f"{stack_name}-web")
    owner.rename(f"{stack_name}-web-moved")
    impostor = _impostor(docker_client, f"{stack_name}-web")
    try:
        before = live_sysctl(docker_client, impostor.id, "net.core.somaxconn")
        result = run_cli("apply", str(plan_file))
        _clean_error(result, "stale")
        assert live_sysctl(docker_client, impostor.id, "net.core.somaxconn") == before
        assert live_sysctl(docker_client, owner.id, "net.core.somaxconn") == "1024"
        impostor.reload()
        assert impostor.status == "running" and "stackctl.stack" not in impostor.labels
    finally:
        impostor.remove(force=True)


def test_a_rename_between_plan_and_apply_refuses_the_joining_steps(docker_client, stack_name, tmp_path):
    """As when the owner is renamed and an impostor started while `apply` waits at its
    confirmation prompt: the plan was made, then the names moved. The helper and a new
    member target the owner's id; the id no longer carries the name, so they refuse."""
    from stackctl.apply import Applier
    from stackctl.engine import connect
    from stackctl.errors import ApplyError
    from stackctl.plan import make_plan
    from stackctl.resources import desired
    from stackctl.spec import load

    spec = _somax_spec(tmp_path, stack_name)
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    spec.write_text(spec.read_text().replace("[groups.web.members.m]", "[groups.web.members.n]\n"
                                             f'image = "{BUSYBOX}"\ncommand = ["sleep", "2147483647"]\n'
                                             "\n[groups.web.members.m]"))
    want = desired(load(spec, env={"SOMAX": "1026"}).stack)
    engine = connect()
    keys = {"web": ["net.core.somaxconn"]}
    plan = make_plan(want, engine.observe(stack_name, keys, helper_images={"web": BUSYBOX}))
    # The owner re-joins the stack network for the new member's alias (n.web).
    assert {c.address for c in plan.actionable} == {"owner.web", "helper.web", "member.web.n"}
    owner = docker_client.containers.get(f"{stack_name}-web")
    owner.rename(f"{stack_name}-web-moved")  # ... while the operator reads the plan
    impostor = _impostor(docker_client, f"{stack_name}-web")
    try:
        with pytest.raises(ApplyError) as exc:
            Applier(engine, plan).run()
        assert "now named" in str(exc.value)
        assert live_sysctl(docker_client, impostor.id, "net.core.somaxconn") != "1026"
        assert live_sysctl(docker_client, owner.id, "net.core.somaxconn") == "1024"
        assert f"{stack_name}-web-n" not in {c.name for c in docker_client.containers.list(all=True)}
    finally:
        impostor.remove(force=True)
