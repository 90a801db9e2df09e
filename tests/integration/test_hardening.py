"""Plans that do what they say, against the real engine: paused owners, one-shot
members, --replace of a helper, --target, saved-plan options, destroy's needs. Each
result is checked from outside stackctl (docker inspect, engine events, HTTP)."""

from __future__ import annotations

import time

import pytest

from support import BUSYBOX, HTTPD, SLEEPER, http_get, netns, run_cli, spec_text

pytestmark = pytest.mark.engine


def _spec(tmp_path, stack: str, groups: dict):
    path = tmp_path / "stack.toml"
    path.write_text(spec_text(stack, groups))
    return path


@pytest.mark.fault
def test_a_paused_owner_is_unpaused_in_place(docker_client, stack_name, tmp_path, port):
    spec = _spec(tmp_path, stack_name, {"g": {"ports": [f"127.0.0.1:{port}:80"],
                                              "members": {"web": HTTPD}}})
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    owner = docker_client.api.inspect_container(f"{stack_name}-g")
    docker_client.api.pause(owner["Id"])
    plan = run_cli("plan", str(spec))
    assert "owner.g will be updated in-place" in plan.stdout, plan.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.stdout
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    after = docker_client.api.inspect_container(f"{stack_name}-g")
    assert after["State"]["Status"] == "running"
    assert after["State"]["StartedAt"] == owner["State"]["StartedAt"], "not restarted"
    assert netns(docker_client, f"{stack_name}-g-web") == netns(docker_client, f"{stack_name}-g")
    assert "hello from stackctl" in http_get(port)
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0


def test_a_one_shot_member_that_exited_0_is_complete(docker_client, stack_name, tmp_path):
    job = {"image": BUSYBOX, "command": ["true"]}  # restart = "no", the default
    spec = _spec(tmp_path, stack_name, {"g": {"members": {"job": job, "m": SLEEPER}}})
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    c = docker_client.containers.get(f"{stack_name}-g-job")
    c.wait(timeout=60)
    started = docker_client.api.inspect_container(c.id)["State"]["StartedAt"]
    assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0
    status = run_cli("status", str(spec))
    assert "completed" in status.stdout and "In sync" in status.stdout, status.stdout
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    assert docker_client.api.inspect_container(c.id)["State"]["StartedAt"] == started, "not run again"


def test_replace_helper_writes_even_when_values_match(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"g": {"sysctls": {"net.core.somaxconn": 1237},
                                              "members": {"m": SLEEPER}}})
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    since = int(time.time()) - 1
    result = run_cli("apply", str(spec), "--auto-approve", "--replace", f"helper.g")
    assert result.returncode == 0, result.stderr
    until = int(time.time()) + 1
    helpers = [e for e in docker_client.events(since=since, until=until, decode=True,
                                               filters={"type": "container", "event": "start"})
               if e["Actor"]["Attributes"].get("name") == f"{stack_name}-g-sysctl"]
    assert len(helpers) == 1, "a helper ran and wrote"


def test_targeting_says_so_and_saved_plans_refuse_plan_options(docker_client, stack_name, tmp_path):
    spec = _spec(tmp_path, stack_name, {"a": {"members": {"m": SLEEPER}},
                                        "b": {"members": {"m": SLEEPER}}})
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    docker_client.containers.get(f"{stack_name}-b-m").remove(force=True)  # drift in b
    targeted = run_cli("plan", str(spec), "--target", "owner.a")
    assert targeted.returncode == 0
    assert "Targeting is in effect" in targeted.stdout and "other changes may be pending" in targeted.stdout
    assert "The engine matches the spec" not in targeted.stdout
    saved = tmp_path / "p.json"
    assert run_cli("plan", str(spec), "--out", str(saved)).returncode == 0
    for flag in (["--refresh", "false"], ["--target", "owner.a"]):
        refused = run_cli("apply", str(saved), *flag)
        assert refused.returncode == 1 and "a saved plan is applied exactly as it was made" in refused.stderr
    for out, what in ((tmp_path / "missing" / "p.json", "does not exist"), (tmp_path, "is a directory")):
        bad = run_cli("plan", str(spec), "--out", str(out))
        assert bad.returncode == 1 and what in bad.stderr and "Traceback" not in bad.stderr


def test_destroy_needs_only_the_names(docker_client, stack_name, tmp_path):
    spec = tmp_path / "stack.toml"
    spec.write_text(spec_text(stack_name, {"g": {"sysctls": {"net.core.somaxconn": "${SOMAX}"},
                                                 "members": {"m": {**SLEEPER, "image": "${IMG}"}}}}))
    env = {"SOMAX": "1238", "IMG": BUSYBOX}
    assert run_cli("apply", str(spec), "--auto-approve", env=env).returncode == 0
    asked = run_cli("destroy", str(spec))  # no terminal, no variables
    assert asked.returncode == 1
    assert "--auto-approve to destroy without asking" in asked.stderr, asked.stderr
    assert "apply" not in asked.stderr
    done = run_cli("destroy", str(spec), "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert not docker_client.containers.list(all=True, filters={"label": f"stackctl.stack={stack_name}"})
