"""Plan semantics against the real engine: in place vs replace vs cascade, saved plans."""

from __future__ import annotations

import json

import pytest

from support import HTTPD, SLEEPER, free_port, http_get, live_sysctl, run_cli, spec_text

pytestmark = pytest.mark.engine


def _state(client, stack: str) -> dict[str, tuple[str, str]]:
    """name -> (id, StartedAt): what must not move on an in-place change."""
    return {c.name: (c.id, c.attrs["State"]["StartedAt"])
            for c in client.containers.list(all=True, filters={"label": f"stackctl.stack={stack}"})}


def _group(port: int, somaxconn: int) -> dict:
    return {"edge": {"ports": [f"127.0.0.1:{port}:80"], "sysctls": {"net.core.somaxconn": somaxconn},
                     "members": {"web": HTTPD, "side": SLEEPER}}}


def test_sysctl_change_is_in_place(docker_client, stack_name, port, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, _group(port, 1024)))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    before = _state(docker_client, stack_name)

    spec.write_text(spec_text(stack_name, _group(port, 2048)))
    plan = run_cli("plan", str(spec), "--detailed-exitcode")
    assert plan.returncode == 2
    assert "~ helper.edge" in plan.stdout
    assert 'sysctls["net.core.somaxconn"] = "1024" -> "2048"' in plan.stdout
    assert "no container is recreated or restarted" in plan.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.stdout
    doc = json.loads(run_cli("plan", str(spec), "--json").stdout)
    actions = {c["address"]: c["action"] for c in doc["changes"]}
    assert actions == {"network.default": ["no-op"], "owner.edge": ["no-op"], "helper.edge": ["update"],
                       "member.edge.side": ["no-op"], "member.edge.web": ["no-op"]}

    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    assert _state(docker_client, stack_name) == before, "no container may be recreated or restarted"
    assert live_sysctl(docker_client, f"{stack_name}-edge", "net.core.somaxconn") == "2048"
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0


def test_port_change_replaces_owner_and_every_member(docker_client, stack_name, port, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, _group(port, 1024)))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    before = _state(docker_client, stack_name)

    new_port = free_port()
    spec.write_text(spec_text(stack_name, _group(new_port, 1024)))
    plan = run_cli("plan", str(spec))
    assert "-/+ owner.edge" in plan.stdout and "# forces replacement" in plan.stdout
    assert "ports changed: forces replacement" in plan.stdout
    assert "-/+ member.edge.web" in plan.stdout and "-/+ member.edge.side" in plan.stdout
    assert "owner is replaced: the member must join the new namespace" in plan.stdout

    apply = run_cli("apply", str(spec), "--auto-approve")
    assert apply.returncode == 0, apply.stdout + apply.stderr
    after = _state(docker_client, stack_name)
    assert set(after) == set(before)
    assert all(after[n][0] != before[n][0] for n in before), "owner and members are new containers"
    assert "hello from stackctl" in http_get(new_port)
    assert live_sysctl(docker_client, f"{stack_name}-edge", "net.core.somaxconn") == "1024"
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0


def test_member_change_replaces_only_that_member(docker_client, stack_name, port, tmp_path):
    groups = _group(port, 1024)
    groups["edge"]["members"]["side"] = {**SLEEPER, "depends_on": ["web"]}
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, groups))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    before = _state(docker_client, stack_name)
    groups["edge"]["members"]["web"] = {**HTTPD, "environment": {"MODE": "blue"}}
    spec.write_text(spec_text(stack_name, groups))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    after = _state(docker_client, stack_name)
    web, side, owner = f"{stack_name}-edge-web", f"{stack_name}-edge-side", f"{stack_name}-edge"
    assert after[web][0] != before[web][0]
    assert after[side] == before[side] and after[owner] == before[owner]
    assert "hello from stackctl" in http_get(port)


def test_saved_plan_applies_exactly_and_stale_plan_is_refused(docker_client, stack_name, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, {"g": {"sysctls": {"net.core.somaxconn": 1111},
                                                 "members": {"m": SLEEPER}}}))
    planfile = tmp_path / "plan.json"
    made = run_cli("plan", str(spec), "--out", str(planfile))
    assert made.returncode == 0 and planfile.exists()
    # Applying a saved plan asks nothing, even without a terminal.
    applied = run_cli("apply", str(planfile))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete! Resources: 4 added" in applied.stdout

    spec.write_text(spec_text(stack_name, {"g": {"sysctls": {"net.core.somaxconn": 2222},
                                                 "members": {"m": SLEEPER}}}))
    assert run_cli("plan", str(spec), "--out", str(planfile)).returncode == 0
    # Someone restarts a member after the plan was reviewed: the plan is stale.
    owner = f"{stack_name}-g"
    docker_client.containers.get(f"{stack_name}-g-m").restart(timeout=1)
    stale = run_cli("apply", str(planfile))
    assert stale.returncode == 1
    assert "stale" in stale.stderr and "Traceback" not in stale.stderr
    assert live_sysctl(docker_client, owner, "net.core.somaxconn") == "1111", "nothing applied"

    # A plan made without reading live sysctls is checked the same way when applied: it
    # is current, not refused as stale for the sysctls it never read.
    assert run_cli("plan", str(spec), "--refresh=false", "--out", str(planfile)).returncode == 0
    unread = run_cli("apply", str(planfile))
    assert unread.returncode == 0, unread.stdout + unread.stderr
    assert "stale" not in unread.stdout + unread.stderr
