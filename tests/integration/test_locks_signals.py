"""Locks and signals against the real engine: a signal at any moment after the lock is
taken releases it; a second signal aborts with no helper left writing; a lock left by a
process killed with -9 on this host is taken over, one held by a live process or another
host never is; force-unlock needs the lock's id unless the holder is gone; no stack's
container can take a lock's name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import BUSYBOX, SLEEPER, run_cli, spec_text

pytestmark = [pytest.mark.engine, pytest.mark.fault]

ENV = {**os.environ, "NO_COLOR": "1"}
HOLD = ("import sys, os, time\n"
        "from stackctl.engine import connect\n"
        "lock = connect().lock(sys.argv[1], [sys.argv[2]], 'apply')\n"
        "print(lock.cid, flush=True)\n"
        "if sys.argv[3] == 'exit':\n"
        "    os._exit(0)\n"
        "time.sleep(600)\n")


def _spec(tmp_path: Path, stack: str, groups: dict) -> Path:
    path = tmp_path / f"{stack}.toml"
    path.write_text(spec_text(stack, groups))
    return path


def _roles(client, stack: str) -> list[str]:
    return sorted(c.labels["stackctl.role"]
                  for c in client.containers.list(all=True, filters={"label": f"stackctl.stack={stack}"}))


def _hold_lock(stack: str, then: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, stack, BUSYBOX, then], env=ENV,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_lock_left_by_kill_9_is_taken_over_with_a_line_saying_so(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})
    proc, lock_id = _hold_lock(stack_name, "sleep")
    proc.kill()
    proc.wait()
    assert _roles(docker_client, stack_name) == ["lock"]
    result = run_cli("apply", str(spec), "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert f"took over the lock of stack {stack_name!r}" in result.stderr
    assert f"process {proc.pid} no longer runs on this host" in result.stderr
    assert _roles(docker_client, stack_name) == ["member", "owner"], "lock released after"


def test_a_zombie_holder_counts_as_dead(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})
    proc, _ = _hold_lock(stack_name, "exit")
    deadline = time.monotonic() + 30
    while open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the holder never became a zombie"
        time.sleep(0.05)
    try:
        unlock = run_cli("force-unlock", str(spec))  # no id needed: the holder is gone
        assert unlock.returncode == 0 and "Released the lock" in unlock.stdout, unlock.stderr
        assert _roles(docker_client, stack_name) == []
    finally:
        proc.wait()


def test_live_holder_is_never_broken_and_force_unlock_needs_its_id(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})
    proc, lock_id = _hold_lock(stack_name, "sleep")
    try:
        apply = run_cli("apply", str(spec), "--auto-approve")
        assert apply.returncode == 1 and "Traceback" not in apply.stderr
        assert f"lock ID {lock_id[:12]}" in apply.stderr and "took over" not in apply.stderr
        refused = run_cli("force-unlock", str(spec))
        assert refused.returncode == 1, refused.stdout
        assert f"process {proc.pid} is still running on this host" in refused.stderr
        assert f"--lock-id {lock_id[:12]}" in refused.stderr
        wrong = run_cli("force-unlock", str(spec), "--lock-id", "0" * 12)
        assert wrong.returncode == 1 and "nothing was released" in wrong.stderr
        assert _roles(docker_client, stack_name) == ["lock"], "still held"
        unlock = run_cli("force-unlock", str(spec), "--lock-id", lock_id[:12])
        assert unlock.returncode == 0 and "Released the lock" in unlock.stdout
        assert _roles(docker_client, stack_name) == []
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_another_host_is_never_taken_over(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})
    docker_client.api.create_container(BUSYBOX, ["stackctl-lock"], name=f"{stack_name}.stackctl-lock",
                                       labels={"stackctl.stack": stack_name, "stackctl.role": "lock",
                                               "stackctl.lock.holder": "1@another-host",
                                               "stackctl.lock.operation": "apply"})
    result = run_cli("apply", str(spec), "--auto-approve")
    assert result.returncode == 1 and "is locked" in result.stderr, result.stderr
    assert _roles(docker_client, stack_name) == ["lock"]


def test_a_stacks_container_cannot_take_another_stacks_lock_name(docker_client, stack_name, tmp_path):
    # Stack "<name>-stackctl" with group "lock" owns a container "<name>-stackctl-lock":
    # the old lock name of stack "<name>". It must not lock stack "<name>".
    other = f"{stack_name}-stackctl"
    try:
        first = run_cli("apply", str(_spec(tmp_path, other, {"lock": {"members": {"m": SLEEPER}}})),
                        "--auto-approve")
        assert first.returncode == 0, first.stderr
        assert docker_client.containers.get(f"{other}-lock").labels["stackctl.role"] == "owner"
        mine = run_cli("apply", str(_spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})),
                       "--auto-approve")
        assert mine.returncode == 0, mine.stderr
        assert _roles(docker_client, stack_name) == ["member", "owner"]
    finally:
        for c in docker_client.containers.list(all=True, filters={"label": f"stackctl.stack={other}"}):
            c.remove(force=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_at_the_prompt_releases_the_lock(docker_client, stack_name, tmp_path, sig):
    spec = _spec(tmp_path, stack_name, {"g": {"members": {"m": SLEEPER}}})
    primary, secondary = os.openpty()  # a terminal on stdin, so apply asks
    proc = subprocess.Popen([sys.executable, "-m", "stackctl", "apply", str(spec)], env=ENV,
                            stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(secondary)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Only 'yes' will be accepted" in line:
                break
        assert _roles(docker_client, stack_name) == ["lock"], "the lock is held at the prompt"
        time.sleep(0.3)  # into input()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(primary)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and "Traceback" not in err
    assert _roles(docker_client, stack_name) == [], "lock released, nothing created"


def test_second_signal_aborts_removes_helpers_and_nothing_writes_after_exit(docker_client, stack_name,
                                                                           tmp_path):
    def groups(base: int) -> dict:
        return {f"g{i}": {"sysctls": {"net.core.somaxconn": base + i},
                          "members": {"m": SLEEPER}} for i in range(8)}

    spec = _spec(tmp_path, stack_name, groups(700))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    spec = _spec(tmp_path, stack_name, groups(800))  # now every group needs a helper run
    proc = subprocess.Popen([sys.executable, "-m", "stackctl", "apply", str(spec), "--auto-approve",
                             "--parallelism", "4"], env=ENV, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "helper." in line and "Modifying..." in line:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    after_exit = sorted(c.id for c in docker_client.containers.list(
        all=True, filters={"label": f"stackctl.stack={stack_name}"}))
    roles = _roles(docker_client, stack_name)
    assert "helper" not in roles and "lock" not in roles, roles
    time.sleep(2)
    later = sorted(c.id for c in docker_client.containers.list(
        all=True, filters={"label": f"stackctl.stack={stack_name}"}))
    assert later == after_exit, "nothing was created after stackctl exited"
    final = run_cli("apply", str(spec), "--auto-approve")
    assert final.returncode == 0, final.stderr
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0
