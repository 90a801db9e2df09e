"""Member container options against the real engine, checked from outside stackctl:
``docker inspect``, and inside the container (``id``, capability masks, a read-only root,
cgroup limits, ulimits, the env file's values). In-place changes keep the container."""

from __future__ import annotations

import json
import time

import pytest

from support import SLEEPER, run_cli, spec_text

pytestmark = pytest.mark.engine

SECRET = "s3cr3t-value-never-printed"


def _sh(client, name: str, script: str, user: str = "") -> tuple[int, str]:
    kwargs = {"user": user} if user else {}
    code, out = client.containers.get(name).exec_run(["sh", "-c", script], **kwargs)
    return code, out.decode().strip()


def _state(client, name: str) -> tuple[str, str]:
    c = client.containers.get(name)
    return c.id, c.attrs["State"]["StartedAt"]


def _cap_mask(status: str, field: str = "CapEff") -> int:
    line = next(l for l in status.splitlines() if l.startswith(field + ":"))
    return int(line.split()[1], 16)


CAP_CHOWN, CAP_NET_ADMIN = 0, 12


def _members(mem: str = "64m", cpus: float = 0.5, pids: int = 50, restart: str = "no") -> dict:
    app = {**SLEEPER, "restart": restart,
           "cap_add": ["NET_ADMIN"], "cap_drop": ["cap_chown"], "devices": ["/dev/net/tun"],
           "ulimits": {"nofile": {"soft": 1000, "hard": 2000}, "nproc": 300},
           "mem_limit": mem, "cpus": cpus, "pids_limit": pids,
           "labels": {"com.example.team": "shop"},
           "stop_signal": "SIGUSR1", "stop_grace_period": "7s",
           "healthcheck": {"test": ["CMD", "true"], "interval": "1s", "retries": 2},
           "logging": {"driver": "json-file", "options": {"max-size": "1m"}},
           "security_opt": ["no-new-privileges:true"],
           "env_file": "app.env", "environment": {"OVERRIDE": "from-spec"}}
    hardened = {**SLEEPER, "user": "1234:2345", "working_dir": "/tmp", "read_only": True,
                "tmpfs": ["/scratch:size=1m"], "cap_drop": ["ALL"]}
    return {"g": {"members": {"app": app, "hardened": hardened}}}


def test_every_member_option_has_its_effect(docker_client, stack_name, tmp_path):
    (tmp_path / "app.env").write_text(f"# secrets\nTOKEN={SECRET}\nexport QUOTED=\"a b\"\nOVERRIDE=from-file\n")
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, _members()))
    applied = run_cli("apply", str(spec), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert SECRET not in applied.stdout + applied.stderr
    app, hardened = f"{stack_name}-g-app", f"{stack_name}-g-hardened"

    # Inside the app container: capabilities, device, ulimits, cgroup limits, env file.
    _, status = _sh(docker_client, app, "cat /proc/self/status")
    assert _cap_mask(status) & (1 << CAP_NET_ADMIN), "cap_add NET_ADMIN"
    assert not _cap_mask(status) & (1 << CAP_CHOWN), "cap_drop CHOWN"
    assert "NoNewPrivs:\t1" in status, "security_opt no-new-privileges"
    assert _sh(docker_client, app, "ip addr add 10.77.0.1/32 dev lo")[0] == 0
    assert _sh(docker_client, app, "test -c /dev/net/tun")[0] == 0
    # The limits of the container's own process 1, as the kernel reports them (a shell
    # started by `docker exec` read a soft nofile of 2000 once in three CI runs).
    limits = {line[:26].strip(): line[26:].split()[:2]
              for line in _sh(docker_client, app, "cat /proc/1/limits")[1].splitlines()[1:]}
    assert limits["Max open files"] == ["1000", "2000"], limits
    assert limits["Max processes"] == ["300", "300"], limits
    assert _sh(docker_client, app, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")[1] == str(64 * 2**20)
    assert _sh(docker_client, app, "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us")[1] == "50000"
    assert _sh(docker_client, app, "cat /sys/fs/cgroup/pids/pids.max")[1] == "50"
    env = _sh(docker_client, app, "env")[1].splitlines()
    assert f"TOKEN={SECRET}" in env and "QUOTED=a b" in env
    assert "OVERRIDE=from-spec" in env, "environment wins over env_file, as in Compose"

    # What only docker inspect shows.
    d = docker_client.api.inspect_container(app)
    assert d["Config"]["Labels"]["com.example.team"] == "shop"
    assert d["Config"]["StopSignal"] == "SIGUSR1" and d["Config"]["StopTimeout"] == 7
    assert d["Config"]["Healthcheck"]["Test"] == ["CMD", "true"]
    assert d["Config"]["Healthcheck"]["Interval"] == 10 ** 9
    assert d["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert SECRET not in d["Config"]["Labels"]["stackctl.config"], "labels carry a digest only"
    deadline = time.monotonic() + 20
    while docker_client.api.inspect_container(app)["State"]["Health"]["Status"] != "healthy":
        assert time.monotonic() < deadline, "the healthcheck runs"
        time.sleep(0.5)

    # Inside the hardened one: user, working dir, read-only root with a tmpfs, no caps.
    assert _sh(docker_client, hardened, "id -u; id -g")[1].split() == ["1234", "2345"]
    assert _sh(docker_client, hardened, "pwd")[1] == "/tmp"
    code, out = _sh(docker_client, hardened, "touch /written 2>&1")
    assert code != 0 and "Read-only file system" in out
    assert _sh(docker_client, hardened, "touch /scratch/ok && grep ' /scratch ' /proc/mounts")[1].count("size=1024k") == 1
    _, status = _sh(docker_client, hardened, "cat /proc/self/status")
    assert _cap_mask(status, "CapBnd") == 0, "cap_drop ALL"

    # Applied, the stack plans nothing (the labels round-trip every option).
    again = run_cli("plan", str(spec), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_limits_and_restart_change_in_place(docker_client, stack_name, tmp_path):
    (tmp_path / "app.env").write_text("TOKEN=x\n")
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, _members()))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    app = f"{stack_name}-g-app"
    before = _state(docker_client, app)

    spec.write_text(spec_text(stack_name, _members(mem="96m", cpus=0.25, pids=60, restart="always")))
    plan = run_cli("plan", str(spec), "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "~ member.g.app" in plan.stdout
    assert "updated in place (docker update), without a restart" in plan.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.stdout
    applied = run_cli("apply", str(spec), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr

    assert _state(docker_client, app) == before, "same container, not restarted"
    assert _sh(docker_client, app, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")[1] == str(96 * 2**20)
    assert _sh(docker_client, app, "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us")[1] == "25000"
    assert _sh(docker_client, app, "cat /sys/fs/cgroup/pids/pids.max")[1] == "60"
    assert docker_client.api.inspect_container(app)["HostConfig"]["RestartPolicy"]["Name"] == "always"
    # The labels still record creation's values; the live ones are read and match.
    after = run_cli("plan", str(spec), "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr
    # What that costs: the updated member is inspected, the other one is not.
    from stackctl.engine import connect
    from stackctl.resources import desired, in_place_expected
    from stackctl.spec import load

    loaded = load(spec)
    engine = connect()
    before_requests = engine.reader.api.requests
    observed = engine.observe(stack_name, {}, expect=in_place_expected(
        desired(loaded.stack, loaded.env_files)))
    assert engine.reader.api.requests - before_requests == 6, \
        ("container, network, volume and image listings, the owner inspect, and one "
         "inspect for the updated member")
    live = {c.member: c.live for c in observed.containers if c.member}
    assert live == {"app": {"mem_limit": 96 * 2**20, "cpus": 0.25, "pids_limit": 60}, "hardened": {}}

    # Lifting the memory limit is not something docker update can do: a replacement.
    members = _members(cpus=0.25, pids=60, restart="always")
    del members["g"]["members"]["app"]["mem_limit"]
    spec.write_text(spec_text(stack_name, members))
    plan = run_cli("plan", str(spec))
    assert "-/+ member.g.app" in plan.stdout
    assert "mem_limit removed, which docker update cannot do: forces replacement" in plan.stdout

    # Another option (here: user) replaces that member only.
    members = _members(mem="96m", cpus=0.25, pids=60, restart="always")
    members["g"]["members"]["app"]["user"] = "0:0"
    spec.write_text(spec_text(stack_name, members))
    doc = json.loads(run_cli("plan", str(spec), "--json").stdout)
    actions = {c["address"]: c["action"] for c in doc["changes"]}
    assert actions == {"network.default": ["no-op"], "owner.g": ["no-op"], "member.g.app": ["delete", "create"],
                       "member.g.hardened": ["no-op"]}


def test_env_file_change_replaces_its_readers_and_is_never_shown(docker_client, stack_name, tmp_path):
    env = tmp_path / "app.env"
    env.write_text(f"TOKEN={SECRET}\n")
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, {"g": {"members": {
        "reader": {**SLEEPER, "env_file": ["app.env"]}, "other": SLEEPER}}}))
    first = run_cli("plan", str(spec))
    assert '"content": "(sensitive)", "path": "app.env"' in first.stdout, first.stdout
    assert SECRET not in first.stdout and "sha256:" not in first.stdout
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    reader, other = f"{stack_name}-g-reader", f"{stack_name}-g-other"
    before = {n: _state(docker_client, n) for n in (reader, other)}

    env.write_text(f"# rotated\nTOKEN={SECRET}-2\n")
    plan = run_cli("plan", str(spec), "--detailed-exitcode")
    assert plan.returncode == 2
    assert "-/+ member.g.reader" in plan.stdout
    assert "env file app.env changed: forces replacement" in plan.stdout
    assert "~ env_file = (sensitive) # forces replacement" in plan.stdout
    assert "Plan: 1 to add, 0 to change, 1 to destroy." in plan.stdout
    as_json = run_cli("plan", str(spec), "--json").stdout
    doc = json.loads(as_json)
    assert {c["address"]: c["action"] for c in doc["changes"]}["member.g.other"] == ["no-op"]
    saved = tmp_path / "plan.json"
    assert run_cli("plan", str(spec), "--out", str(saved)).returncode == 0
    for text in (plan.stdout, plan.stderr, as_json, saved.read_text()):
        assert SECRET not in text
    assert "sha256:" not in as_json, "not even the digest is shown"

    # The saved plan describes the file as it was: changed again, the plan is refused.
    env.write_text(f"TOKEN={SECRET}-3\n")
    refused = run_cli("apply", str(saved))
    assert refused.returncode == 1
    assert "env file" in refused.stderr and "changed after the plan was made" in refused.stderr
    assert SECRET not in refused.stdout + refused.stderr
    assert _state(docker_client, reader) == before[reader], "nothing was destroyed for it"

    env.write_text(f"# rotated\nTOKEN={SECRET}-2\n")
    applied = run_cli("apply", str(saved))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _state(docker_client, other) == before[other]
    assert _state(docker_client, reader)[0] != before[reader][0]
    assert f"TOKEN={SECRET}-2" in _sh(docker_client, reader, "env")[1].splitlines()
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0
