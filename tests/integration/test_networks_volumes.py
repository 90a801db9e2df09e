"""Stack networks, cross-group order and named volumes against the real engine, checked
from outside stackctl: DNS and HTTP from inside members, docker inspect, files in volumes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support import BUSYBOX, HEALTHY_BUSYBOX, PAUSE, run_cli

pytestmark = pytest.mark.engine

HEAD = f'''
[defaults]
owner_image = "{PAUSE}"
helper_image = "{BUSYBOX}"
'''
SLEEP = '["sleep", "2147483647"]'
HTTPD8080 = '["httpd", "-f", "-p", "8080", "-h", "/www"]'


def _write(tmp_path: Path, stack: str, body: str) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(f'[stack]\nname = "{stack}"\n{HEAD}\n{body}')
    return path


def _apply(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_cli("apply", str(spec), "--auto-approve", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _exec(client, name: str, *cmd: str) -> tuple[int, str]:
    rc, out = client.containers.get(name).exec_run(list(cmd))
    return rc, out.decode(errors="replace")


def _state(client, name: str) -> tuple[str, str]:
    c = client.api.inspect_container(name)
    return c["Id"], c["State"]["StartedAt"]


THREE_TIERS = f'''
[networks.back]
internal = true

[groups.api]
networks = ["default", "back"]
hostname = "api-host"
extra_hosts = ["legacy.db:10.9.8.7", "v6:[::1]"]
shm_size = "32m"
dns_opt = ["ndots:1"]

[groups.api.members.srv]
image = "{BUSYBOX}"
command = {HTTPD8080}
init = true

[groups.web.members.cli]
image = "{BUSYBOX}"
command = {SLEEP}
init = true

[groups.db]
networks = ["back"]

[groups.db.members.pg]
image = "{BUSYBOX}"
command = {SLEEP}
init = true
'''


def test_names_resolve_across_groups_and_not_across_an_internal_network(docker_client, stack_name, tmp_path):
    spec = _write(tmp_path, stack_name, THREE_TIERS)
    out = _apply(spec).stdout
    assert "network.default: Creation complete" in out and "network.back: Creation complete" in out

    web, db, api = (f"{stack_name}-web-cli", f"{stack_name}-db-pg", f"{stack_name}-api-srv")
    # The group name and member.group resolve on a shared network and reach the member.
    for url in ("http://api:8080/", "http://srv.api:8080/"):
        rc, body = _exec(docker_client, web, "wget", "-qO-", url)
        assert rc == 0 and "hello from stackctl" in body, (url, body)
    rc, body = _exec(docker_client, db, "wget", "-qO-", "http://api:8080/")
    assert rc == 0 and "hello from stackctl" in body
    # web is not on the internal network back: db's name does not resolve there.
    rc, answer = _exec(docker_client, web, "nslookup", "db")
    assert rc != 0 and "NXDOMAIN" in answer, answer
    rc, answer = _exec(docker_client, db, "nslookup", "pg.db")
    assert rc == 0, answer

    networks = {n.name: n for n in docker_client.networks.list(filters={"label": f"stackctl.stack={stack_name}"})}
    assert set(networks) == {stack_name, f"{stack_name}-back"}
    back = docker_client.api.inspect_network(f"{stack_name}-back")
    assert back["Internal"] is True and back["Labels"]["stackctl.network"] == "back"
    # The namespace settings of the group reach its members.
    assert _exec(docker_client, api, "hostname")[1].strip() == "api-host"
    hosts = _exec(docker_client, api, "cat", "/etc/hosts")[1]
    assert "10.9.8.7\tlegacy.db" in hosts and "::1\tv6" in hosts
    assert "ndots:1" in _exec(docker_client, api, "cat", "/etc/resolv.conf")[1]
    shm = _exec(docker_client, api, "df", "-k", "/dev/shm")[1].splitlines()[-1].split()
    assert shm[1] == str(32 * 1024), shm

    again = run_cli("plan", str(spec), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    destroyed = run_cli("destroy", str(spec), "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert not docker_client.networks.list(filters={"label": f"stackctl.stack={stack_name}"})
    assert not docker_client.containers.list(all=True, filters={"label": f"stackctl.stack={stack_name}"})


def test_joining_and_leaving_a_network_keeps_every_container(docker_client, stack_name, tmp_path):
    spec = _write(tmp_path, stack_name, THREE_TIERS)
    _apply(spec)
    names = [f"{stack_name}-{n}" for n in ("web", "web-cli", "db", "db-pg", "api", "api-srv")]
    before = {n: _state(docker_client, n) for n in names}
    web = f"{stack_name}-web-cli"
    assert _exec(docker_client, web, "nslookup", "db")[0] != 0

    joined = _write(tmp_path, stack_name, THREE_TIERS.replace(
        "[groups.web.members.cli]", '[groups.web]\nnetworks = ["default", "back"]\n\n[groups.web.members.cli]'))
    plan = run_cli("plan", str(joined))
    assert "~ owner.web" in plan.stdout and "joins " in plan.stdout and "nothing restarts" in plan.stdout
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.stdout, plan.stdout
    _apply(joined)
    assert {n: _state(docker_client, n) for n in names} == before, "ids and start times kept"
    rc, body = _exec(docker_client, web, "nslookup", "pg.db")
    assert rc == 0, body
    assert run_cli("plan", str(joined), "--detailed-exitcode").returncode == 0

    # And back: leaving is in place too.
    _apply(_write(tmp_path, stack_name, THREE_TIERS))
    assert {n: _state(docker_client, n) for n in names} == before
    owner = docker_client.api.inspect_container(f"{stack_name}-web")
    assert set(owner["NetworkSettings"]["Networks"]) == {stack_name}
    assert _eventually_unresolved(docker_client, web, "db")


def _eventually_unresolved(client, container: str, name: str, tries: int = 20) -> bool:
    """The engine's DNS may answer from what it knew for a moment after a disconnect."""
    import time

    for _ in range(tries):
        rc, answer = _exec(client, container, "nslookup", name)
        if rc != 0 and "NXDOMAIN" in answer:
            return True
        time.sleep(0.25)
    return False


GATED = f'''
[groups.api.members.srv]
image = "{HEALTHY_BUSYBOX}"
command = ["sh", "-c", "sleep 3; touch /tmp/healthy; exec httpd -f -p 8080 -h /www"]
init = true

[groups.web]
depends_on = ["api"]

[groups.web.members.cli]
image = "{BUSYBOX}"
command = {SLEEP}
init = true
'''


def test_a_dependent_group_starts_after_its_dependency_is_healthy(docker_client, stack_name, tmp_path):
    spec = _write(tmp_path, stack_name, GATED)
    out = _apply(spec).stdout
    lines = out.splitlines()
    ready = lines.index("member.api.srv: Waiting until running and healthy...")
    creating = lines.index("member.web.cli: Creating...")
    assert ready < creating, out
    assert any(l.startswith("member.api.srv: Ready after") for l in lines[ready:creating]), out
    # Owners start in parallel: web's owner did not wait.
    assert lines.index("owner.web: Creating...") < ready

    api = docker_client.api.inspect_container(f"{stack_name}-api-srv")
    cli = docker_client.api.inspect_container(f"{stack_name}-web-cli")
    passed = [e for e in api["State"]["Health"]["Log"] if e["ExitCode"] == 0]
    assert passed, api["State"]["Health"]
    # The member started after the dependency's first passing check had finished (RFC
    # 3339 stamps of one clock compare as text once cut to the same precision).
    assert cli["State"]["StartedAt"][:23] >= passed[0]["End"][:23] or len(passed) < len(
        api["State"]["Health"]["Log"]), (cli["State"]["StartedAt"], api["State"]["Health"]["Log"])


def test_a_dependency_that_never_gets_healthy_fails_its_edge(docker_client, stack_name, tmp_path):
    spec = _write(tmp_path, stack_name, GATED.replace("sleep 3; touch /tmp/healthy; ", ""))
    result = run_cli("apply", str(spec), "--auto-approve", "--wait-timeout", "4")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{stack_name}-api-srv is not ready" in result.stderr
    assert "not healthy yet: /tmp/healthy does not exist" in result.stderr  # its health log
    assert "not attempted because a dependency failed: member.web.cli" in result.stderr
    names = {c.name for c in docker_client.containers.list(all=True, filters={"label": f"stackctl.stack={stack_name}"})}
    assert f"{stack_name}-web" in names, "the owner is not held back"
    assert f"{stack_name}-web-cli" not in names, "the dependent member was not attempted"


def test_apply_wait_names_each_member_that_is_not_healthy(docker_client, stack_name, tmp_path):
    body = f'''
[groups.app.members.ok]
image = "{HEALTHY_BUSYBOX}"
command = ["sh", "-c", "touch /tmp/healthy; exec sleep 2147483647"]
init = true

[groups.app.members.sick]
image = "{HEALTHY_BUSYBOX}"
command = {SLEEP}
init = true

[groups.app.members.plain]
image = "{BUSYBOX}"
command = {SLEEP}
init = true
'''
    spec = _write(tmp_path, stack_name, body)
    result = run_cli("apply", str(spec), "--auto-approve", "--wait", "--wait-timeout", "4")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Apply complete!" in result.stdout
    assert "1 member(s) not ready" in result.stderr
    assert f"member.app.sick ({stack_name}-app-sick): running, " in result.stderr
    assert "not healthy yet" in result.stderr
    assert "member.app.ok" not in result.stderr and "member.app.plain" not in result.stderr

    status = run_cli("status", str(spec), "--json")
    doc = json.loads(status.stdout)
    health = {m["member"]: m["health"] for m in doc["groups"]["app"]["members"]}
    assert health["ok"] == "healthy" and health["plain"] is None
    assert health["sick"] in ("unhealthy", "starting")
    assert "running (healthy)" in run_cli("status", str(spec)).stdout

    healthy = _write(tmp_path, stack_name, body.replace(
        f'command = {SLEEP}\ninit = true\n\n[groups.app.members.plain]',
        'command = ["sh", "-c", "touch /tmp/healthy; exec sleep 2147483647"]\n'
        'init = true\n\n[groups.app.members.plain]', 1))
    result = run_cli("apply", str(healthy), "--auto-approve", "--wait", "--wait-timeout", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Every member is running, and healthy where it has a health check." in result.stdout


def test_external_network_is_joined_and_never_removed(docker_client, stack_name, tmp_path):
    external = docker_client.networks.create(f"{stack_name}-ext")  # not the stack's: no label
    try:
        spec = _write(tmp_path, stack_name, f'''
[networks.proxy]
external = true
name = "{stack_name}-ext"

[groups.edge]
networks = ["default", "proxy"]

[groups.edge.members.web]
image = "{BUSYBOX}"
command = {HTTPD8080}
init = true
''')
        _apply(spec)
        owner = docker_client.api.inspect_container(f"{stack_name}-edge")
        assert set(owner["NetworkSettings"]["Networks"]) == {stack_name, f"{stack_name}-ext"}
        assert "edge" in owner["NetworkSettings"]["Networks"][f"{stack_name}-ext"]["Aliases"]
        # Reachable by name from a container that is not the stack's, on the external network.
        out = docker_client.containers.run(BUSYBOX, ["wget", "-qO-", "http://web.edge:8080/"],
                                           network=f"{stack_name}-ext", remove=True)
        assert b"hello from stackctl" in out

        destroyed = run_cli("destroy", str(spec), "--auto-approve")
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
        assert not docker_client.networks.list(filters={"label": f"stackctl.stack={stack_name}"})
        external.reload()  # still there

        # A missing external network stops the plan before anything changes.
        external.remove()
        plan = run_cli("apply", str(spec), "--auto-approve")
        assert plan.returncode == 1
        assert f"network '{stack_name}-ext' (external, joined by owner.edge) does not exist" in plan.stderr
        assert not docker_client.containers.list(all=True, filters={"label": f"stackctl.stack={stack_name}"})
        assert not docker_client.networks.list(filters={"label": f"stackctl.stack={stack_name}"})
    finally:
        try:
            external.remove()
        except Exception:
            pass


def test_volume_data_survives_destroy_and_destroy_volumes_removes_only_the_stacks(docker_client, stack_name, tmp_path):
    outsider = docker_client.volumes.create(f"{stack_name}-outside")  # external, not the stack's
    try:
        spec = _write(tmp_path, stack_name, f'''
[volumes.data]
labels = {{ "com.example.backup" = "daily" }}

[volumes.old]
external = true
name = "{stack_name}-outside"

[groups.db.members.store]
image = "{BUSYBOX}"
command = {SLEEP}
init = true
volumes = ["data:/data", "old:/old", "./conf:/conf:ro"]
''')
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "app.ini").write_text("from the spec's directory\n")
        _apply(spec)
        store = f"{stack_name}-db-store"
        vol = docker_client.api.inspect_volume(f"{stack_name}-data")
        assert vol["Labels"]["stackctl.stack"] == stack_name and vol["Labels"]["com.example.backup"] == "daily"
        assert _exec(docker_client, store, "cat", "/conf/app.ini")[1] == "from the spec's directory\n"
        assert _exec(docker_client, store, "sh", "-c", "echo kept > /data/file; echo old > /old/file")[0] == 0

        destroyed = run_cli("destroy", str(spec), "--auto-approve")
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
        assert f"Kept 1 volume(s) and their data: {stack_name}-data" in destroyed.stdout
        assert docker_client.api.inspect_volume(f"{stack_name}-data")

        _apply(spec)
        assert _exec(docker_client, store, "cat", "/data/file")[1] == "kept\n"

        # A changed option is reported, not acted on.
        changed = spec.read_text().replace('labels = { "com.example.backup" = "daily" }',
                                           'driver_opts = { type = "tmpfs", device = "tmpfs" }')
        spec.write_text(changed)
        plan = run_cli("plan", str(spec), "--detailed-exitcode")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert "volume.data: driver_opts and labels changed, but a volume is never replaced" in plan.stdout
        assert "--replace volume.data" in plan.stdout

        gone = run_cli("destroy", str(spec), "--auto-approve", "--volumes")
        assert gone.returncode == 0, gone.stdout + gone.stderr
        assert not docker_client.volumes.list(filters={"label": f"stackctl.stack={stack_name}"})
        outsider.reload()  # the external volume stays, with its data
        out = docker_client.containers.run(BUSYBOX, ["cat", "/old/file"], remove=True,
                                           volumes={outsider.name: {"bind": "/old", "mode": "ro"}})
        assert out == b"old\n"
    finally:
        outsider.remove(force=True)
