"""plan -> apply -> plan -> destroy against the real engine, checked from outside stackctl."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import HTTPD, PAUSE, ROOT, SLEEPER, http_get, live_sysctl, run_cli, spec_text

pytestmark = pytest.mark.engine


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(text)
    return path


def _containers(client, stack: str) -> dict[str, object]:
    return {c.name: c for c in client.containers.list(all=True, filters={"label": f"stackctl.stack={stack}"})}


def test_plan_apply_converge_destroy(docker_client, stack_name, port, tmp_path):
    spec = _write(tmp_path, spec_text(stack_name, {
        "edge": {"ports": [f"127.0.0.1:{port}:80"],
                 "sysctls": {"net.core.somaxconn": 1024, "net.ipv4.ip_local_port_range": "20000 40000"},
                 "members": {"web": HTTPD}},
    }))
    bystander = docker_client.containers.run(PAUSE, name=f"{stack_name}-bystander", detach=True)
    foreign = docker_client.containers.run(PAUSE, detach=True, labels={"stackctl.stack": stack_name + "x"})
    try:
        plan = run_cli("plan", str(spec), "--detailed-exitcode")
        assert plan.returncode == 2, plan.stderr
        assert "+ owner.edge" in plan.stdout and "+ member.edge.web" in plan.stdout
        assert "Plan: 4 to add, 0 to change, 0 to destroy." in plan.stdout
        assert not _containers(docker_client, stack_name), "plan must not change anything"

        apply = run_cli("apply", str(spec), "--auto-approve")
        assert apply.returncode == 0, apply.stdout + apply.stderr
        assert "Apply complete! Resources: 4 added, 0 changed, 0 destroyed." in apply.stdout

        found = _containers(docker_client, stack_name)
        owner, member = found[f"{stack_name}-edge"], found[f"{stack_name}-edge-web"]
        owner.reload(), member.reload()
        assert owner.labels["stackctl.role"] == "owner" and member.labels["stackctl.member"] == "web"
        assert owner.attrs["HostConfig"]["PortBindings"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert owner.attrs["HostConfig"]["IpcMode"] == "shareable"
        assert member.attrs["HostConfig"]["NetworkMode"] == f"container:{owner.id}"
        assert member.attrs["HostConfig"]["IpcMode"] == f"container:{owner.id}"
        assert live_sysctl(docker_client, owner.name, "net.core.somaxconn") == "1024"
        assert live_sysctl(docker_client, owner.name, "net.ipv4.ip_local_port_range") == "20000 40000"
        assert "hello from stackctl" in http_get(port)
        # No helper container is left behind.
        assert set(found) == {owner.name, member.name}

        again = run_cli("plan", str(spec), "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "No changes." in again.stdout

        destroy = run_cli("destroy", str(spec), "--auto-approve")
        assert destroy.returncode == 0, destroy.stderr
        assert "Destroy complete! Resources: 3 destroyed." in destroy.stdout
        assert not _containers(docker_client, stack_name)
        second = run_cli("destroy", str(spec), "--auto-approve")
        assert second.returncode == 0 and "No changes." in second.stdout
        bystander.reload(), foreign.reload()
        assert bystander.status == "running" and foreign.status == "running"
    finally:
        bystander.remove(force=True)
        foreign.remove(force=True)


def test_members_follow_depends_on_and_groups_are_independent(docker_client, stack_name, tmp_path):
    spec = _write(tmp_path, spec_text(stack_name, {
        "a": {"members": {"db": SLEEPER, "app": {**SLEEPER, "depends_on": ["db"]},
                          "web": {**SLEEPER, "depends_on": ["app"]}}},
        "b": {"sysctls": {"net.ipv4.tcp_fin_timeout": 17}, "members": {"solo": SLEEPER}},
    }))
    apply = run_cli("apply", str(spec), "--auto-approve")
    assert apply.returncode == 0, apply.stdout + apply.stderr
    found = _containers(docker_client, stack_name)
    started = {n: found[n].attrs["State"]["StartedAt"] for n in found}
    created = {n: found[n].attrs["Created"] for n in found}
    p = stack_name
    # A member is created only after what it depends on has started.
    assert created[f"{p}-a-app"] > started[f"{p}-a-db"]
    assert created[f"{p}-a-web"] > started[f"{p}-a-app"]
    assert created[f"{p}-a-db"] > started[f"{p}-a"]
    assert live_sysctl(docker_client, f"{p}-b", "net.ipv4.tcp_fin_timeout") == "17"
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0


def test_ipc_sysctls_reach_members(docker_client, stack_name, tmp_path):
    spec = _write(tmp_path, spec_text(stack_name, {
        "shm": {"sysctls": {"kernel.shmmax": 123456789, "net.core.somaxconn": 999},
                "members": {"app": SLEEPER}},
    }))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    member = docker_client.containers.get(f"{stack_name}-shm-app")
    code, out = member.exec_run(["cat", "/proc/sys/kernel/shmmax", "/proc/sys/net/core/somaxconn"])
    assert code == 0 and out.decode().split() == ["123456789", "999"]


def test_apply_without_terminal_refuses_and_changes_nothing(docker_client, stack_name, tmp_path):
    spec = _write(tmp_path, spec_text(stack_name, {"g": {"members": {"m": SLEEPER}}}))
    result = run_cli("apply", str(spec))
    assert result.returncode == 1
    assert "--auto-approve" in result.stderr and "Traceback" not in result.stderr
    assert not _containers(docker_client, stack_name)


def test_console_script_and_module_both_work(docker_client, stack_name, tmp_path):
    import shutil
    import subprocess

    script = shutil.which("stackctl")
    assert script, "the stackctl console script is not on PATH (pip install -e .)"
    spec = _write(tmp_path, spec_text(stack_name, {"g": {"members": {"m": SLEEPER}}}))
    # PYTHONPATH: the script imports this checkout, not another one installed with -e.
    out = subprocess.run([script, "plan", str(spec)], capture_output=True, text=True,
                         env={"NO_COLOR": "1", "PATH": __import__("os").environ["PATH"],
                              "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and "Plan: 3 to add" in out.stdout
    assert run_cli("plan", str(spec)).stdout == out.stdout
