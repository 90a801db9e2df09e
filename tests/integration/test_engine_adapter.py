"""The engine adapter's remote path: live sysctls read by a labelled helper run, as
against an engine whose processes this host cannot enter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from support import BUSYBOX, SLEEPER, run_cli, spec_text

pytestmark = pytest.mark.engine


def test_live_sysctls_read_by_helper_when_nsenter_is_unavailable(docker_client, stack_name, tmp_path):
    from stackctl.engine import connect

    spec = tmp_path / "stack.toml"
    spec.write_text(spec_text(stack_name, {"g": {"sysctls": {"net.core.somaxconn": 1234,
                                                             "kernel.shmmax": 55555555},
                                                 "members": {"m": SLEEPER}}}))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    engine = connect()
    engine.local_namespaces = False  # what a remote engine gives: no local pids to enter
    keys = {"g": ["kernel.shmmax", "net.core.somaxconn"]}
    observed = engine.observe(stack_name, keys, helper_images={"g": BUSYBOX})
    assert observed.sysctls == {"g": {"kernel.shmmax": "55555555", "net.core.somaxconn": "1234"}}

    # A read helper left by a killed run carries the stack's labels: the next plan
    # removes it (it never blocks a read: each read helper has a name of its own).
    docker_client.containers.create(BUSYBOX, ["true"], name=f"{stack_name}-g-sysctl-read",
                                    labels={"stackctl.stack": stack_name, "stackctl.group": "g",
                                            "stackctl.role": "helper"})
    again = engine.observe(stack_name, keys, helper_images={"g": BUSYBOX})
    assert again.sysctls == observed.sysctls
    plan = run_cli("plan", str(spec))
    assert "sysctl helper container left by an interrupted run" in plan.stdout, plan.stdout
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    names = {c.name for c in docker_client.containers.list(
        all=True, filters={"label": f"stackctl.stack={stack_name}"})}
    assert names == {f"{stack_name}-g", f"{stack_name}-g-m"}, "no helper is left behind"


@pytest.mark.fault
def test_concurrent_remote_reads_do_not_remove_each_other_s_helpers(docker_client, stack_name, tmp_path):
    """On a remote engine `plan` and `status` read live sysctls with helper containers and
    take no lock. Two at once used to share one helper name: one removed the other's
    ("can not get logs from container which is dead"). And a running read helper is
    another run's, not a leftover to delete."""
    from concurrent.futures import ThreadPoolExecutor

    from stackctl.engine import connect
    from stackctl.plan import make_plan
    from stackctl.resources import desired
    from stackctl.spec import load

    spec = tmp_path / "stack.toml"
    spec.write_text(spec_text(stack_name, {"g": {"sysctls": {"net.core.somaxconn": 1236},
                                                 "members": {"m": SLEEPER}}}))
    assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
    keys = {"g": ["net.core.somaxconn"]}

    def read(_: int) -> dict:
        engine = connect()
        engine.local_namespaces = False  # a remote engine: helpers read
        return engine.observe(stack_name, keys, helper_images={"g": BUSYBOX}).sysctls

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(read, range(8)))
    assert results == [{"g": {"net.core.somaxconn": "1236"}}] * 8
    # Another run's read helper at work: neither planned for deletion nor in the
    # fingerprint a saved plan is checked with.
    engine = connect()
    engine.local_namespaces = False
    before = engine.observe(stack_name, keys, helper_images={"g": BUSYBOX})
    busy = docker_client.containers.run(
        BUSYBOX, ["sleep", "60"], detach=True, name=f"{stack_name}-g-sysctl-read.0123abcd",
        labels={"stackctl.stack": stack_name, "stackctl.group": "g", "stackctl.role": "helper"})
    try:
        during = engine.observe(stack_name, keys, helper_images={"g": BUSYBOX})
        assert busy.id in {c.id for c in during.containers}
        assert during.fingerprint() == before.fingerprint()
        plan = make_plan(desired(load(spec).stack), during)
        assert plan.summary.empty, [c.address for c in plan.actionable]
    finally:
        busy.remove(force=True)


def _converged(stack_name: str, tmp_path, groups: int = 3):
    spec = tmp_path / "stack.toml"
    spec.write_text(spec_text(stack_name, {
        f"g{i}": {"sysctls": {"net.core.somaxconn": 1100 + i, "kernel.shmmax": 44444444},
                  "members": {"a": SLEEPER, "b": SLEEPER}}
        for i in range(groups)}))
    result = run_cli("apply", str(spec), "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    return spec


def test_no_op_observe_costs_one_list_and_one_inspect_per_group(docker_client, stack_name, tmp_path):
    """The request budget of a no-op plan on a local engine: a constant plus one per group.
    Members come from the listing and this host's /proc; the result is the same facts an
    inspect of every container gives (--refresh=full)."""
    from stackctl.engine import connect

    _converged(stack_name, tmp_path, groups=3)
    engine = connect()
    assert engine.local_namespaces, "the tests run as root against a local engine"
    api = engine.reader.api
    keys = {f"g{i}": ["kernel.shmmax", "net.core.somaxconn"] for i in range(3)}

    before = api.requests
    fast = engine.observe(stack_name, keys)
    assert api.requests - before == 4 + 3, ("four lists (containers, networks, volumes, "
                                            "images), one inspect per owner")
    before = api.requests
    full = engine.observe(stack_name, keys, inspect_all=True)
    assert api.requests - before == 4 + 9, "four lists, one inspect per container"
    busybox_id = docker_client.images.get(BUSYBOX).id
    assert fast.images == full.images and fast.images[BUSYBOX] == busybox_id

    assert fast.sysctls == full.sysctls == {
        f"g{i}": {"kernel.shmmax": "44444444", "net.core.somaxconn": str(1100 + i)} for i in range(3)}
    by_id = {c.id: c for c in full.containers}
    assert {c.id for c in fast.containers} == set(by_id)
    for c in fast.containers:
        f = by_id[c.id]
        assert (c.name, c.role, c.group, c.member, c.config_hash, c.status, c.network_container,
                c.netns, c.actual.get("image"), c.image_id) == \
               (f.name, f.role, f.group, f.member, f.config_hash, f.status, f.network_container,
                f.netns, f.actual.get("image"), f.image_id)
        if c.member:
            assert c.netns and c.netns == by_id[c.network_container].netns

    # Members' pids: read from their cgroups next to a known owner's, or found by a scan
    # of every process; both are the member's own processes.
    from stackctl.engine import namespaces

    owner = next(c for c in full.containers if c.member is None)
    owner_pid = docker_client.api.inspect_container(owner.id)["State"]["Pid"]
    members = [c.id for c in full.containers if c.member]
    direct = namespaces.container_pids(members, (owner_pid, owner.id))
    scanned = namespaces.container_pids(members)
    assert set(direct) == set(scanned) == set(members)
    for cid in members:
        assert namespaces.runs_in(direct[cid], cid) and namespaces.runs_in(scanned[cid], cid)
        assert namespaces.netns(direct[cid]) == by_id[cid].netns


def test_plan_reads_a_local_engine_without_docker_py_or_processes(docker_client, stack_name, tmp_path):
    """`stackctl plan` on a local engine imports no docker-py and spawns no process."""
    spec = _converged(stack_name, tmp_path, groups=2)
    probe = textwrap.dedent(f"""
        import subprocess, sys
        spawned = []
        real = subprocess.Popen.__init__
        def spy(self, *a, **kw):
            spawned.append(a[0] if a else kw.get("args"))
            real(self, *a, **kw)
        subprocess.Popen.__init__ = spy
        from stackctl.cli import main
        try:
            rc = main(["plan", "--detailed-exitcode", {str(spec)!r}])
        except SystemExit as exc:
            rc = exc.code
        print("RESULT", rc, "docker" in sys.modules, len(spawned))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "RESULT 0 False 0", out.stdout + out.stderr
