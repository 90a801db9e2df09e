"""Helpers shared by the tests (imported as ``support``; tests/ is on sys.path)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = "stackctl-local/busybox:1.35"
PAUSE = "stackctl-local/pause:3.10"
# Healthy once /tmp/healthy exists (scripts/build-images builds it with a HEALTHCHECK).
HEALTHY_BUSYBOX = "stackctl-local/busybox-health:1.35"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stackctl`` as an operator would; never with a terminal."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    # This checkout's stackctl, whatever the working directory (an installed one may differ).
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "stackctl", *args], cwd=cwd, env=full_env,
                          input=stdin if stdin is not None else "", capture_output=True,
                          text=True, timeout=300)


def spec_text(stack: str, groups: dict[str, dict], defaults: bool = True) -> str:
    """A spec as TOML text. ``groups`` maps a group name to {ports, sysctls, members}; each
    member maps to a dict of member keys. Values are written with repr-compatible TOML."""

    def toml(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(toml(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{toml(k)} = {toml(x)}" for k, x in v.items()) + " }"
        raise TypeError(v)

    lines = ["[stack]", f"name = {toml(stack)}", ""]
    if defaults:
        lines += ["[defaults]", f"owner_image = {toml(PAUSE)}", f"helper_image = {toml(BUSYBOX)}", ""]
    for gname, g in groups.items():
        lines.append(f"[groups.{gname}]")
        for key in ("ports", "sysctls", "owner_image", "owner_command", "helper_image"):
            if key in g:
                lines.append(f"{key} = {toml(g[key])}")
        lines.append("")
        for mname, m in g.get("members", {}).items():
            lines.append(f"[groups.{gname}.members.{mname}]")
            lines += [f"{k} = {toml(v)}" for k, v in m.items()]
            lines.append("")
    return "\n".join(lines)


HTTPD = {"image": BUSYBOX, "command": ["httpd", "-f", "-p", "80", "-h", "/www"], "init": True}
SLEEPER = {"image": BUSYBOX, "command": ["sleep", "2147483647"], "init": True}


def http_get(port: int, timeout: float = 5.0) -> str:
    """GET / on 127.0.0.1:port, retrying briefly while the server comes up."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def live_sysctl(client, owner: str, key: str) -> str:
    """Read a sysctl inside ``owner``'s namespaces from outside stackctl (a plain run)."""
    out = client.containers.run(BUSYBOX, ["sysctl", "-n", key], remove=True,
                                network_mode=f"container:{owner}", ipc_mode=f"container:{owner}")
    return " ".join(out.decode().split())


def write_sysctl_by_hand(client, owner: str, key: str, value: str) -> None:
    """Change a sysctl inside ``owner``'s namespaces behind stackctl's back.

    ``docker run --security-opt systempaths=unconfined`` is a CLI spelling; through the API
    /proc/sys is unmasked with empty MaskedPaths and ReadonlyPaths.
    """
    api = client.api
    hc = api.create_host_config(network_mode=f"container:{owner}", ipc_mode=f"container:{owner}")
    hc["MaskedPaths"], hc["ReadonlyPaths"] = [], []
    cid = api.create_container(BUSYBOX, ["sysctl", "-w", f"{key}={value}"], host_config=hc)["Id"]
    try:
        api.start(cid)
        assert api.wait(cid, timeout=60)["StatusCode"] == 0, api.logs(cid)
    finally:
        api.remove_container(cid, force=True)


def netns(client, name: str) -> str:
    """The network namespace of a running container, read from /proc via its pid."""
    import os

    pid = client.api.inspect_container(name)["State"]["Pid"]
    return os.readlink(f"/proc/{pid}/ns/net")
