"""`stackctl watch` and `validate` on a repo of stacks, without an engine: usage errors,
durations, a repo validated stack by stack, and an agent that waits for an engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import ROOT, SLEEPER, free_port, run_cli, spec_text


@pytest.mark.parametrize("args, fragment", [
    (["watch"], "the following arguments are required: PATH"),
    (["watch", ".", "--interval", "5 minutes"], "expected a duration such as 60, 30s, 5m or 1h"),
    (["watch", ".", "--interval", "0s"], "expected a duration"),
    (["watch", ".", "--log-format", "xml"], "invalid choice: 'xml'"),
])
def test_watch_usage_errors_exit_1(args, fragment):
    result = run_cli(*args, env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.returncode == 1, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_listen_must_be_host_port(tmp_path):
    result = run_cli("watch", str(tmp_path), "--listen", "localhost",
                     env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.returncode == 1 and "--listen: expected HOST:PORT" in result.stderr


def _repo(tmp_path: Path) -> Path:
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "stack.toml").write_text(spec_text(name, {"g": {"members": {"m": SLEEPER}}}))
    return tmp_path


def test_validate_a_repo_of_stacks(tmp_path):
    result = run_cli("validate", str(_repo(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "stack 'alpha'" in result.stdout and "stack 'beta'" in result.stdout


def test_validate_a_repo_reports_every_invalid_stack_and_exits_1(tmp_path):
    repo = _repo(tmp_path)
    (repo / "beta" / "stack.toml").write_text("[stack]\nname = 'beta'\n[groups.g]\nbogus = 1\n")
    result = run_cli("validate", str(repo))
    assert result.returncode == 1
    assert "stack 'alpha'" in result.stdout
    assert "beta/stack.toml: groups.g.bogus: unknown key" in result.stderr
    assert "1 of 2 stacks" in result.stderr and "Traceback" not in result.stderr


def test_watch_waits_for_an_unreachable_engine_and_exits_0_on_sigterm(tmp_path):
    listen = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "stackctl", "watch", str(_repo(tmp_path)),
                             "--log-format", "json", "--listen", f"127.0.0.1:{listen}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock",
                                 "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "listening"
        waiting = json.loads(proc.stdout.readline())
        assert waiting["event"] == "engine-unavailable" and "waiting for it" in waiting["reason"]
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{listen}/healthz", timeout=5)
                raise AssertionError("healthy without an engine")
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
                assert json.loads(exc.read())["engine"] == "down"
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()


def test_validate_a_repo_refuses_two_stacks_with_one_name(tmp_path):
    repo = _repo(tmp_path)
    text = (repo / "alpha" / "stack.toml").read_text()
    (repo / "beta" / "stack.toml").write_text(text)
    result = run_cli("validate", str(repo))
    assert result.returncode == 1
    assert "beta/stack.toml: stack.name: stack 'alpha' is also declared by" in result.stderr


def test_listen_on_a_taken_port_is_one_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("watch", str(_repo(tmp_path)), "--listen", f"127.0.0.1:{port}",
                         env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"--listen 127.0.0.1:{port}: cannot serve /metrics and /healthz there" in result.stderr
