"""The engine adapter's pure reading pieces, without an engine: listing and inspect
documents turned into facts, and the stdlib socket client against a small HTTP server on a
unix socket (chunked bodies, errors, connections the server closes)."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator

import pytest

from stackctl.engine.facts import from_inspect, from_listing, nanos
from stackctl.engine.socket_api import ApiError, SocketApi
from stackctl.errors import EngineUnavailable
from stackctl.resources import Role

OWNER_ID = "a" * 64
MEMBER_ID = "b" * 64
LABELS = {"stackctl.stack": "shop", "stackctl.group": "edge", "stackctl.role": "member",
          "stackctl.member": "web", "stackctl.config-hash": "h1",
          "stackctl.config": json.dumps({"image": "busybox:1.35"})}


def listing(**changes: Any) -> dict[str, Any]:
    entry = {"Id": MEMBER_ID, "Names": ["/shop-edge-web"], "Image": "busybox:1.35",
             "ImageID": "sha256:" + "c" * 64, "Labels": dict(LABELS), "State": "running",
             "Status": "Up 5 minutes", "HostConfig": {"NetworkMode": f"container:{OWNER_ID}"}}
    entry.update(changes)
    return entry


def test_listing_entry_becomes_facts_without_start_time_or_restart_policy() -> None:
    c = from_listing(listing(), "net:[4026532999]")
    assert (c.id, c.name, c.role, c.group, c.member, c.config_hash) == \
        (MEMBER_ID, "shop-edge-web", Role.MEMBER, "edge", "web", "h1")
    assert c.config == {"image": "busybox:1.35"}
    assert c.running and c.network_container == OWNER_ID and c.netns == "net:[4026532999]"
    assert c.started_at == 0 and c.restart_policy is None, "not in the listing: not compared"
    assert c.actual == {"image": "busybox:1.35"}


def test_listing_exit_code_and_link_aliases() -> None:
    c = from_listing(listing(State="exited", Status="Exited (137) 2 seconds ago",
                             Names=["/other/web-alias", "/shop-edge-web"]), None)
    assert (c.status, c.exit_code, c.name) == ("exited", 137, "shop-edge-web")
    assert from_listing(listing(State="created", Status="Created"), None).exit_code == 0


def test_listing_image_id_when_the_tag_moved_is_not_a_reference() -> None:
    # The engine lists the image ID once the tag points elsewhere: no drift is claimed.
    moved = listing(Image="sha256:" + "c" * 64)
    assert "image" not in from_listing(moved, None).actual
    assert "image" not in from_listing(listing(Image=moved["ImageID"]), None).actual


def test_listing_with_a_mangled_config_label_still_has_its_hash() -> None:
    c = from_listing(listing(Labels={**LABELS, "stackctl.config": "{not json"}), None)
    assert c.config is None and c.config_hash == "h1"


def test_inspect_document_becomes_facts() -> None:
    d = {"Id": OWNER_ID, "Name": "/shop-edge",
         "Config": {"Image": "pause:3.10", "Labels": {**LABELS, "stackctl.role": "owner"}},
         "State": {"Status": "exited", "Running": False, "Pid": 0, "ExitCode": 2,
                   "StartedAt": "2026-11-28T10:00:00.123456789Z"},
         "HostConfig": {"NetworkMode": "default", "RestartPolicy": {"Name": "unless-stopped"},
                        "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}}}
    c, pid = from_inspect(d, local=True)
    assert (c.role, c.status, c.exit_code, c.restart_policy, pid) == \
        (Role.OWNER, "exited", 2, "unless-stopped", 0)
    assert c.started_at == nanos("2026-11-28T10:00:00.123456789Z") > 0
    assert c.network_container is None and c.netns is None
    assert c.actual == {"image": "pause:3.10", "ports": ["127.0.0.1:8080:80/tcp"]}


def test_an_owner_s_ports_are_the_bindings_the_engine_made() -> None:
    """Requested '[fe80::1%lo]:30112:80' was accepted by the engine, which bound every
    address: compared by the request alone it planned "No changes"."""
    made_everywhere = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "30112"},
                                  {"HostIp": "::", "HostPort": "30112"}]}

    def owner(requested: dict, made: dict, running: bool = True) -> list[str]:
        d = {"Id": OWNER_ID, "Name": "/shop-edge",
             "Config": {"Image": "pause:3.10", "Labels": {**LABELS, "stackctl.role": "owner"}},
             "State": {"Status": "running" if running else "exited", "Running": running},
             "HostConfig": {"PortBindings": requested}, "NetworkSettings": {"Ports": made}}
        return from_inspect(d, local=False)[0].actual["ports"]

    zoned = {"80/tcp": [{"HostIp": "fe80::1%lo", "HostPort": "30112"}]}
    assert owner(zoned, made_everywhere) == ["30112:80/tcp"]
    assert owner(zoned, {}, running=False) == ["[fe80::1%lo]:30112:80/tcp"]
    # Agreeing bindings keep the requested (the spec's) spelling.
    every = {"80/tcp": [{"HostIp": "", "HostPort": "30112"}]}
    assert owner(every, made_everywhere) == ["30112:80/tcp"]
    assert owner({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "30112"}]},
                 {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "30112"}]}) == ["0.0.0.0:30112:80/tcp"]
    mapped = {"80/tcp": [{"HostIp": "::ffff:127.0.0.1", "HostPort": "30113"}]}
    assert owner(mapped, {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "30113"}]}) == \
        ["[::ffff:127.0.0.1]:30113:80/tcp"]


# ------------------------------------------------------------------ socket client
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    closes = 0

    def address_string(self) -> str:  # a unix socket has no host:port
        return "unix"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's spelling)
        if self.path.startswith("/containers/json"):
            body = json.dumps([{"Id": "x", "Query": self.path}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (body[:7], body[7:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/_ping":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
        elif self.path == "/close":
            # Answer, then drop the keep-alive connection, as an idle engine may.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            self.close_connection = True
        else:
            body = json.dumps({"message": "No such container: nope"}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine_socket(tmp_path) -> Iterator[str]:
    path = str(tmp_path / "engine.sock")
    server = _Server(path, _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()


def test_socket_client_reads_json_chunked_and_errors(engine_socket: str) -> None:
    api = SocketApi(engine_socket, timeout=5)
    api.ping()
    listed = api.get("/containers/json", {"all": "1", "filters": '{"label":["a=b"]}'})
    assert listed[0]["Id"] == "x"
    assert "filters=%7B%22label%22" in listed[0]["Query"], "query parameters are URL-encoded"
    with pytest.raises(ApiError) as err:
        api.get("/containers/nope/json")
    assert err.value.status == 404 and str(err.value) == "No such container: nope"
    assert api.requests == 3


def test_socket_client_reconnects_after_the_engine_closed_the_connection(engine_socket: str) -> None:
    api = SocketApi(engine_socket, timeout=5)
    assert api.get("/close") == {}
    assert api.get("/containers/json")[0]["Id"] == "x"


def test_socket_client_names_an_absent_engine(tmp_path) -> None:
    with pytest.raises(EngineUnavailable) as err:
        SocketApi(str(tmp_path / "absent.sock"), timeout=5).ping()
    assert str(err.value) == (f"cannot reach the Docker engine at unix://{tmp_path}/absent.sock: "
                              "No such file or directory (start dockerd, or point DOCKER_HOST "
                              "at a running engine)")



# ------------------------------------------------------------------ namespaces
def test_live_sysctls_are_read_in_the_target_namespaces_by_a_thread_that_ends() -> None:
    """Read this very process's namespaces (no engine): values as /proc/sys has them, a
    key the kernel lacks left out, a process that is gone gives None, and the calling
    thread's own namespace is untouched."""
    import os

    from stackctl.engine import namespaces

    keys = ["net.core.somaxconn", "kernel.shmmax", "net.no_such_key"]
    mine_before = os.readlink("/proc/thread-self/ns/net")
    mine = "e" * 64
    real_runs_in = namespaces.runs_in
    namespaces.runs_in = lambda pid, cid: (pid, cid) == (os.getpid(), mine) or real_runs_in(pid, cid)
    try:
        own, gone = namespaces.read_sysctls([(os.getpid(), mine, keys), (2 ** 22 + 1, mine, keys)])
    finally:
        namespaces.runs_in = real_runs_in
    if not namespaces.available():
        assert own is None and gone is None  # joining a namespace needs root
        return
    with open("/proc/sys/net/core/somaxconn") as a, open("/proc/sys/kernel/shmmax") as b:
        assert own == {"net.core.somaxconn": a.read().strip(), "kernel.shmmax": b.read().strip()}
    assert gone is None
    assert os.readlink("/proc/thread-self/ns/net") == mine_before
    assert namespaces.netns(os.getpid()) == os.readlink(f"/proc/{os.getpid()}/ns/net")
    assert namespaces.container_pids([]) == {}
    # A pid is only taken as a container's when its cgroup names that container.
    assert not namespaces.runs_in(os.getpid(), "f" * 64)
    assert not namespaces.runs_in(2 ** 22 + 1, "f" * 64)


def test_a_pid_is_checked_after_its_namespaces_are_opened(monkeypatch) -> None:
    """The pid-reuse race: a container's process may exit and its pid be reused between
    finding the pid and opening /proc/<pid>/ns/*. The namespaces are opened first and
    the pid checked after, so what was opened is the container's or is not used; and a
    pid that is not the container's process gives no values and no namespace."""
    import os

    from stackctl.engine import namespaces

    if not namespaces.available():
        pytest.skip("joining a namespace needs root")
    order: list[str] = []
    real_open, real_runs_in = os.open, namespaces.runs_in

    def opening(path, *a, **kw):
        if "/ns/" in str(path):
            order.append("open")
        return real_open(path, *a, **kw)

    def checking(pid, cid):
        order.append("check")
        return real_runs_in(pid, cid)

    monkeypatch.setattr(namespaces.os, "open", opening)
    monkeypatch.setattr(namespaces, "runs_in", checking)
    # This test's own pid stands for a container's pid reused by another process.
    assert namespaces.read_sysctls([(os.getpid(), "f" * 64, ["net.core.somaxconn"])]) == [None]
    assert order == ["open", "open", "check"]
    order.clear()
    assert namespaces.netns(os.getpid(), "f" * 64) is None
    assert order == ["check"]


@pytest.mark.parametrize("name", ["net.//.fs.lease-break-time", "net/../fs/lease-break-time",
                                  "vm.swappiness", "kernel.hostname", "net..core"])
def test_the_last_gate_uses_the_whole_name_rule(name: str) -> None:
    """busybox's sysctl swaps '.' and '/': 'net.//.fs.lease-break-time' starts with 'net.'
    and wrote the host's fs.lease-break-time through a prefix-only gate."""
    from stackctl.engine.facts import refuse_host_wide
    from stackctl.errors import EngineError
    from stackctl.resources import Resource, Role

    r = Resource(address="helper.g", role=Role.HELPER, group="g", member=None, name="s-g-sysctl",
                 config={"sysctls": {"net.core.somaxconn": "1024", name: "1"}})
    with pytest.raises(EngineError, match="refusing to write"):
        refuse_host_wide(r)
    refuse_host_wide(Resource(address="helper.g", role=Role.HELPER, group="g", member=None,
                              name="s-g-sysctl", config={"sysctls": {"net.core.somaxconn": "1"}}))


# ------------------------------------------------------------ networks, health, volumes
def test_owner_networks_leave_out_the_short_id_and_none_mode() -> None:
    from stackctl.engine.facts import owner_networks

    cid = "a" * 64
    d = {"Id": cid, "HostConfig": {"NetworkMode": "shop"},
         "NetworkSettings": {"Networks": {"shop": {"Aliases": ["web", "app.web", cid[:12]]},
                                          "shop-back": {"Aliases": None}}}}
    assert owner_networks(d) == {"shop": ("app.web", "web"), "shop-back": ()}
    assert owner_networks({"Id": cid, "HostConfig": {"NetworkMode": "none"},
                           "NetworkSettings": {"Networks": {"none": {}}}}) == {}


@pytest.mark.parametrize("state, expected", [
    ({"Status": "running"}, (True, False, "running (no health check)")),
    ({"Status": "running", "Health": {"Status": "healthy", "Log": []}}, (True, False, "running, healthy")),
    ({"Status": "running", "Health": {"Status": "unhealthy", "Log": [
        {"ExitCode": 1, "Output": "first\nconnection refused\n"}]}},
     (False, False, "running, unhealthy; last health check: connection refused")),
    ({"Status": "running", "Health": {"Status": "starting", "Log": []}},
     (False, False, "running, starting; no health check has finished yet")),
    ({"Status": "exited", "ExitCode": 3}, (False, True, "exited (exit code 3)")),
])
def test_readiness(state, expected) -> None:
    from stackctl.engine.facts import readiness

    assert readiness({"State": state, "HostConfig": {"RestartPolicy": {"Name": "no"}}}) == expected


def test_readiness_of_a_restarting_or_missing_container() -> None:
    from stackctl.engine.facts import readiness

    assert readiness(None) == (False, True, "does not exist")
    exited = {"State": {"Status": "exited", "ExitCode": 1},
              "HostConfig": {"RestartPolicy": {"Name": "always"}}}
    assert readiness(exited) == (False, False, "exited (exit code 1)")  # it may come back


def test_listing_health_and_the_stacks_networks_and_volumes() -> None:
    from stackctl.engine.facts import from_listing, networks_of, volumes_of

    entry = {"Id": "b" * 64, "Names": ["/shop-web-app"], "State": "running",
             "Status": "Up 5 minutes (health: starting)", "Labels": {}}
    assert from_listing(entry, None).health == "starting"
    assert from_listing({**entry, "Status": "Up 2 hours (unhealthy)"}, None).health == "unhealthy"
    assert from_listing({**entry, "Status": "Up 2 hours"}, None).health is None
    mine = {"stackctl.stack": "shop", "stackctl.network": "back", "stackctl.config-hash": "h"}
    nets = networks_of([{"Id": "n1", "Name": "shop-back", "Labels": mine},
                        {"Id": "n2", "Name": "bridge", "Labels": {}},
                        {"Id": "n3", "Name": "other-back", "Labels": {**mine, "stackctl.stack": "other"}}], "shop")
    assert [(n.id, n.address, n.config_hash) for n in nets] == [("n1", "network.back", "h")]
    vols = volumes_of([{"Name": "shop-data", "Labels": {"stackctl.stack": "shop", "stackctl.volume": "data"}},
                       {"Name": "loose", "Labels": None}], "shop")
    assert [(v.name, v.address) for v in vols] == [("shop-data", "volume.data")]
