"""Load: 100 groups (300 containers, 100 sysctl helpers) applied, re-planned, destroyed."""

from __future__ import annotations

import pytest

from support import SLEEPER, run_cli, spec_text

pytestmark = pytest.mark.engine

GROUPS = 100


def test_hundred_groups_apply_replan_destroy(docker_client, stack_name, tmp_path):
    spec = tmp_path / "stack.toml"
    spec.write_text(spec_text(stack_name, {
        f"g{i:03d}": {"sysctls": {"net.core.somaxconn": 1000 + i, "net.ipv4.tcp_fin_timeout": 20},
                      "members": {"a": SLEEPER, "b": {**SLEEPER, "depends_on": ["a"]}}}
        for i in range(GROUPS)
    }))
    applied = run_cli("apply", str(spec), "--auto-approve")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr
    assert f"Resources: {GROUPS * 4 + 1} added" in applied.stdout  # the network; owner, helper, two members
    running = docker_client.containers.list(filters={"label": f"stackctl.stack={stack_name}"})
    assert len(running) == GROUPS * 3
    members = [c for c in running if c.labels["stackctl.role"] == "member"]
    owners = {c.name: c.id for c in running if c.labels["stackctl.role"] == "owner"}
    assert all(c.attrs["HostConfig"]["NetworkMode"] == f"container:{owners[c.name.rsplit('-', 1)[0]]}"
               for c in members)

    replan = run_cli("plan", str(spec), "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout[-3000:]

    destroyed = run_cli("destroy", str(spec), "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"Resources: {GROUPS * 3 + 1} destroyed" in destroyed.stdout
    assert not docker_client.containers.list(all=True, filters={"label": f"stackctl.stack={stack_name}"})
