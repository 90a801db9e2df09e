"""The port preflight: which host ports a plan newly takes, and which holders block it."""

from __future__ import annotations

from stackfix import BASE_SPEC, converged, load_spec
from stackctl.engine import host_ports
from stackctl.observed import Held, Observed
from stackctl.plan import make_plan
from stackctl.plan.preflight import freed_ids, new_bindings, port_conflicts
from stackctl.spec.ports import PortBinding


def _port_change(tmp_path):
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    changed = load_spec(tmp_path, BASE_SPEC.replace('ports = ["8080:80",', 'ports = ["8081:80",'))
    return make_plan(changed, obs), obs


def test_only_created_owners_take_ports(tmp_path) -> None:
    plan, obs = _port_change(tmp_path)
    assert sorted((a, str(b)) for a, b in new_bindings(plan)) == [
        ("owner.edge", "127.0.0.1:9443:443/tcp"), ("owner.edge", "8081:80/tcp")]
    edge = next(c.id for c in obs.containers if c.address == "owner.edge")
    assert edge in freed_ids(plan)
    assert new_bindings(make_plan(load_spec(tmp_path, BASE_SPEC), obs)) == []


def test_holders_block_unless_the_plan_frees_them(tmp_path) -> None:
    plan, obs = _port_change(tmp_path)
    edge = next(c.id for c in obs.containers if c.address == "owner.edge")
    own = [Held(PortBinding(9443, 443, "tcp", "127.0.0.1"), "published by container shop-edge", edge),
           # the engine's proxy for that port, seen as a host socket
           Held(PortBinding(9443, 0, "tcp", "127.0.0.1"), "process 7 (docker-proxy) on this host")]
    assert port_conflicts(plan, own) == []
    other = [Held(PortBinding(8081, 0, "tcp", "::"), "process 9 (nc) on this host")]
    assert port_conflicts(plan, own + other) == [
        "owner.edge: host port 8081/tcp is in use: process 9 (nc) on this host"]
    # A socket on every IPv6 address also holds the IPv4 ones; another protocol does not.
    v4 = [Held(PortBinding(9443, 0, "udp", "0.0.0.0"), "udp"),
          Held(PortBinding(9443, 0, "tcp", "::"), "process 3 (x) on this host")]
    assert port_conflicts(plan, v4) == [
        "owner.edge: host port 127.0.0.1:9443/tcp is in use: process 3 (x) on this host"]
    assert port_conflicts(make_plan(load_spec(tmp_path, BASE_SPEC), Observed(stack="shop")),
                          [Held(PortBinding(5432, 0, "tcp", "10.0.0.1"), "elsewhere")]) == [
        "owner.db: host port 5432/tcp is in use: elsewhere"]


def test_host_socket_addresses_are_decoded() -> None:
    assert host_ports._address("0100007F") == "127.0.0.1"
    assert host_ports._address("00000000000000000000000000000000") == "::"
    assert host_ports._address("0000000000000000FFFF00000100007F") == "127.0.0.1"
    assert host_ports._address("00000000000000000000000001000000") == "::1"


def test_this_process_s_listening_socket_is_found() -> None:
    import os
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        port = s.getsockname()[1]
        held = host_ports.held({(port, "tcp")})
        assert [str(h.binding.host_socket) for h in held] == [f"127.0.0.1:{port}/tcp"]
        if os.geteuid() == 0:
            assert held[0].holder.startswith(f"process {os.getpid()} (")
    finally:
        s.close()
