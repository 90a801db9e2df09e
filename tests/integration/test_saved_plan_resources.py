"""Saved plans over networks, volumes, owner settings and member options, against the
engine: a plan as ``plan --out`` wrote it applies; the same plan with a DNS alias of
another group added by hand is refused and changes nothing."""

from __future__ import annotations

import json

from support import BUSYBOX, PAUSE, run_cli


def _spec(stack: str, mem: str) -> str:
    return f"""
[stack]
name = "{stack}"

[defaults]
owner_image  = "{PAUSE}"
helper_image = "{BUSYBOX}"

[networks.back]
internal = true

[volumes.data]

[groups.db]
networks = ["back"]

[groups.db.members.store]
image   = "{BUSYBOX}"
command = ["sleep", "2147483647"]
init    = true
volumes = ["data:/data"]

[groups.api]
networks   = ["default", "back"]
depends_on = ["db"]
hostname   = "api"
dns        = ["10.0.0.53"]

[groups.api.members.app]
image     = "{BUSYBOX}"
command   = ["sleep", "2147483647"]
init      = true
cap_drop  = ["ALL"]
mem_limit = "{mem}"
"""


def test_a_saved_plan_with_networks_and_volumes_applies_and_a_forged_alias_is_refused(
        docker_client, stack_name, tmp_path):
    spec = tmp_path / "stack.toml"
    spec.write_text(_spec(stack_name, "64m"))
    saved = tmp_path / "plan.json"
    made = run_cli("plan", str(spec), "--out", str(saved))
    assert made.returncode in (0, 2), made.stdout + made.stderr
    applied = run_cli("apply", str(saved))
    assert applied.returncode == 0, applied.stdout + applied.stderr

    # From the engine: the internal network, the volume, the aliases, the limits.
    back = docker_client.networks.get(f"{stack_name}-back")
    assert back.attrs["Internal"] is True
    assert docker_client.volumes.get(f"{stack_name}-data").attrs["Labels"]["stackctl.stack"] == stack_name
    owner = docker_client.containers.get(f"{stack_name}-api")
    aliases = owner.attrs["NetworkSettings"]["Networks"][f"{stack_name}-back"]["Aliases"]
    assert {"api", "app.api"} <= set(aliases) and "db" not in aliases
    app = docker_client.containers.get(f"{stack_name}-api-app")
    assert app.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert app.attrs["HostConfig"]["CapDrop"] == ["ALL"]

    # A new plan, edited by hand to make the api group answer for "db" on the back network.
    spec.write_text(_spec(stack_name, "96m"))
    assert run_cli("plan", str(spec), "--out", str(saved)).returncode in (0, 2)
    doc = json.loads(saved.read_text())
    api = next(c for c in doc["plan"]["changes"] if c["address"] == "owner.api")
    for network in api["resource"]["extra"]["networks"]:
        network[1].append("db")
    saved.write_text(json.dumps(doc))
    forged = run_cli("apply", str(saved))
    assert forged.returncode == 1 and "Traceback" not in forged.stderr
    assert "DNS alias 'db' is not a name of group 'api'" in forged.stderr
    assert "nothing was applied" in forged.stderr
    app.reload()
    assert app.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024, "nothing changed"
    owner.reload()
    assert "db" not in owner.attrs["NetworkSettings"]["Networks"][f"{stack_name}-back"]["Aliases"]
