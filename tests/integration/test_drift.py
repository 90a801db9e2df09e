"""Drift caused by hand with the Docker SDK (not through stackctl): plan reports it with
exit 2, apply heals it with the least disruption, checked from outside, next plan empty."""

from __future__ import annotations


import pytest

from support import (HTTPD, SLEEPER, http_get, live_sysctl, netns, run_cli, spec_text,
                     write_sysctl_by_hand)

pytestmark = pytest.mark.engine


@pytest.fixture
def group(docker_client, stack_name, port, tmp_path):
    """A converged group 'edge' (owner, sysctls, two members) and helpers to check it."""
    spec = tmp_path / "stack.toml"

    def write(somaxconn: int) -> None:
        spec.write_text(spec_text(stack_name, {"edge": {
            "ports": [f"127.0.0.1:{port}:80"],
            "sysctls": {"net.core.somaxconn": somaxconn, "kernel.shmmax": 987654321},
            "members": {"web": {**HTTPD, "restart": "unless-stopped"}, "side": SLEEPER},
        }}))

    write(1024)
    result = run_cli("apply", str(spec), "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr

    class G:
        path = spec
        owner = f"{stack_name}-edge"
        web = f"{stack_name}-edge-web"
        side = f"{stack_name}-edge-side"
        somaxconn = "1024"

        @staticmethod
        def change_somaxconn(value: int) -> None:
            """Change the spec and apply it: the new value is written in place."""
            write(value)
            G.somaxconn = str(value)
            assert run_cli("apply", str(spec), "--auto-approve").returncode == 0

        @staticmethod
        def plan_shows(*fragments: str) -> str:
            plan = run_cli("plan", str(spec), "--detailed-exitcode")
            assert plan.returncode == 2, plan.stdout + plan.stderr
            for f in fragments:
                assert f in plan.stdout, plan.stdout
            return plan.stdout

        @staticmethod
        def heal_and_check() -> str:
            applied = run_cli("apply", str(spec), "--auto-approve")
            assert applied.returncode == 0, applied.stdout + applied.stderr
            owner_ns = netns(docker_client, G.owner)
            assert netns(docker_client, G.web) == owner_ns
            assert netns(docker_client, G.side) == owner_ns
            assert live_sysctl(docker_client, G.owner, "net.core.somaxconn") == G.somaxconn
            assert live_sysctl(docker_client, G.owner, "kernel.shmmax") == "987654321"
            assert "hello from stackctl" in http_get(port)
            again = run_cli("plan", str(spec), "--detailed-exitcode")
            assert again.returncode == 0, again.stdout
            return applied.stdout

    return G


def _ids(client, *names: str) -> dict[str, str]:
    return {n: client.api.inspect_container(n)["Id"] for n in names}


def test_sysctl_changed_by_hand_is_rewritten_in_place(docker_client, group):
    before = _ids(docker_client, group.owner, group.web, group.side)
    write_sysctl_by_hand(docker_client, group.owner, "net.core.somaxconn", "555")
    group.plan_shows('~ helper.edge', 'sysctls["net.core.somaxconn"] = "555" -> "1024"',
                     "Plan: 0 to add, 1 to change, 0 to destroy.")
    group.heal_and_check()
    assert _ids(docker_client, group.owner, group.web, group.side) == before


def test_owner_restart_strands_members_and_loses_in_place_sysctls(docker_client, group):
    # Values written in place by the helper are lost when the owner restarts: Docker
    # re-applies only the sysctls the owner was created with.
    group.change_somaxconn(2048)
    docker_client.containers.get(group.owner).restart(timeout=1)
    assert netns(docker_client, group.web) != netns(docker_client, group.owner)
    assert live_sysctl(docker_client, group.owner, "net.core.somaxconn") == "1024"
    group.plan_shows("owner restarted after member started: attached to a dead namespace",
                     "~ member.edge.web", "~ member.edge.side", "~ helper.edge",
                     'sysctls["net.core.somaxconn"] = "1024" -> "2048"')
    before = _ids(docker_client, group.owner, group.web, group.side)
    group.heal_and_check()
    # Least disruption: restarted, not recreated.
    assert _ids(docker_client, group.owner, group.web, group.side) == before


def test_owner_removed_by_hand_is_recreated_and_members_follow(docker_client, group):
    old = _ids(docker_client, group.web, group.side)
    docker_client.containers.get(group.owner).remove(force=True)
    group.plan_shows("+ owner.edge", "-/+ member.edge.web",
                     "owner was removed: member is attached to a dead namespace")
    group.heal_and_check()
    assert all(v != old[k] for k, v in _ids(docker_client, group.web, group.side).items())


def test_owner_stopped_or_killed_is_started_and_members_rejoin(docker_client, group):
    docker_client.containers.get(group.owner).kill()
    group.plan_shows("owner is exited (exit code 137)", "~ owner.edge", "~ member.edge.web")
    group.heal_and_check()


def test_member_stopped_removed_or_changed_by_hand(docker_client, group):
    docker_client.containers.get(group.side).stop(timeout=1)
    docker_client.containers.get(group.web).remove(force=True)
    group.plan_shows("member is exited", "+ member.edge.web", "member does not exist")
    group.heal_and_check()

    docker_client.api.update_container(group.web, restart_policy={"Name": "no"})
    docker_client.api.rename(group.side, group.side + "-renamed")
    # A member's restart policy is not in the engine's listing: the default refresh reads
    # members from it (no inspect per member) and sees the rename only ...
    group.plan_shows("renamed", "Plan: 0 to add, 1 to change, 0 to destroy.")
    # ... while --refresh=full inspects every member and sees both.
    full = run_cli("plan", str(group.path), "--refresh=full", "--detailed-exitcode")
    assert full.returncode == 2, full.stdout + full.stderr
    assert 'restart = "no" -> "unless-stopped"' in full.stdout and "renamed" in full.stdout
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in full.stdout
    healed = run_cli("apply", str(group.path), "--refresh=full", "--auto-approve")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert docker_client.api.inspect_container(group.web)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert docker_client.api.inspect_container(group.side)["Name"] == "/" + group.side
    assert run_cli("plan", str(group.path), "--refresh=full", "--detailed-exitcode").returncode == 0
    group.heal_and_check()


def test_owner_recreated_by_hand_under_the_same_name(docker_client, group, stack_name):
    """Someone recreates the owner by copying its labels but not its ports."""
    api = docker_client.api
    old = api.inspect_container(group.owner)
    api.remove_container(group.owner, force=True)
    hc = api.create_host_config(ipc_mode="shareable")
    cid = api.create_container(old["Config"]["Image"], name=group.owner,
                               labels=old["Config"]["Labels"], host_config=hc)["Id"]
    api.start(cid)
    group.plan_shows("ports changed by hand", "-/+ owner.edge", "-/+ member.edge.web")
    group.heal_and_check()


def test_owner_recreated_by_hand_strands_members(docker_client, group, stack_name):
    """An exact copy of the owner (same name, labels, ports): members keep the old id."""
    api = docker_client.api
    old = api.inspect_container(group.owner)
    api.remove_container(group.owner, force=True)
    hc = api.create_host_config(ipc_mode="shareable", restart_policy={"Name": "unless-stopped"}, port_bindings={
        k: [(b["HostIp"], int(b["HostPort"])) for b in v]
        for k, v in old["HostConfig"]["PortBindings"].items()})
    hc["NetworkMode"] = old["HostConfig"]["NetworkMode"]  # the stack's network, and aliases
    (net, endpoint), = old["NetworkSettings"]["Networks"].items()
    aliases = [a for a in endpoint["Aliases"] if a != old["Id"][:12]]
    cid = api.create_container(old["Config"]["Image"], name=group.owner, ports=[80],
                               labels=old["Config"]["Labels"], host_config=hc,
                               networking_config=api.create_networking_config(
                                   {net: api.create_endpoint_config(aliases=aliases)}))["Id"]
    api.start(cid)
    out = group.plan_shows("owner was recreated after the member started: attached to a dead "
                           "namespace", "-/+ member.edge.web", "-/+ member.edge.side")
    assert "owner.edge" not in out.split("member.edge")[0].split("actions on stack")[1]
    group.heal_and_check()


def test_leftover_helper_is_removed(docker_client, group, stack_name):
    from support import BUSYBOX

    docker_client.containers.create(BUSYBOX, ["true"], name=f"{stack_name}-edge-sysctl",
                                    labels={"stackctl.stack": stack_name, "stackctl.group": "edge",
                                            "stackctl.role": "helper"})
    group.plan_shows("left by an interrupted run", "- helper.edge#")
    group.heal_and_check()


def test_status_shows_stranded_members_and_drift(docker_client, group):
    group.change_somaxconn(2048)
    docker_client.containers.get(group.owner).restart(timeout=1)
    status = run_cli("status", str(group.path))
    assert status.returncode == 0, status.stderr
    assert "attached to a dead namespace" in status.stdout
    # The restart brought back the creation-time value; the in-place one is lost.
    assert "DRIFT" in status.stdout and "live 1024" in status.stdout
    assert "kernel.shmmax" in status.stdout
    import json

    doc = json.loads(run_cli("status", str(group.path), "--json").stdout)
    members = {m["member"]: m for m in doc["groups"]["edge"]["members"]}
    assert members["web"]["shares_owner_namespace"] is False
    group.heal_and_check()
    healed = json.loads(run_cli("status", str(group.path), "--json").stdout)
    assert all(m["shares_owner_namespace"] for m in healed["groups"]["edge"]["members"])
    assert all(s["ok"] for s in healed["groups"]["edge"]["sysctls"])


def test_refresh_false_skips_live_sysctls(docker_client, group):
    write_sysctl_by_hand(docker_client, group.owner, "net.core.somaxconn", "555")
    plan = run_cli("plan", str(group.path), "--refresh=false", "--detailed-exitcode")
    assert plan.returncode == 0 and "--refresh=false" in plan.stdout
    assert run_cli("plan", str(group.path), "--detailed-exitcode").returncode == 2
