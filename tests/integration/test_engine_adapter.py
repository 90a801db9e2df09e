"""The engine adapter's remote path: live sysctls read by a labelled helper run, as
against an engine whose processes this host cannot enter."""

from __future__ import annotations

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

    # A read helper left by a killed run carries the stack's labels: it is removed, not
    # a name conflict forever after.
    docker_client.containers.create(BUSYBOX, ["true"], name=f"{stack_name}-g-sysctl-read",
                                    labels={"stackctl.stack": stack_name, "stackctl.group": "g",
                                            "stackctl.role": "helper"})
    again = engine.observe(stack_name, keys, helper_images={"g": BUSYBOX})
    assert again.sysctls == observed.sysctls
    names = {c.name for c in docker_client.containers.list(
        all=True, filters={"label": f"stackctl.stack={stack_name}"})}
    assert names == {f"{stack_name}-g", f"{stack_name}-g-m"}, "no helper is left behind"
