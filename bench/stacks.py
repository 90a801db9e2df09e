"""The benchmark's stack, written three equivalent ways, and the helpers around it.

One stack of N namespace groups. Each group is:

* an owner (``stackctl-local/pause:3.10``) publishing ``127.0.0.1:<port>:80`` and holding
  two namespaced sysctls (``net.core.somaxconn`` and ``net.ipv4.tcp_fin_timeout``, both
  different from the kernel defaults 4096 and 60), IPC namespace shareable, restart
  ``unless-stopped``;
* member ``web``: busybox ``httpd -f -p 80 -h /www`` with ``init``;
* member ``side``: busybox ``sleep 2147483647`` with ``init``.

Written as a stackctl spec (TOML), as a Compose v2 file (``network_mode: service:<owner>``,
``ipc: service:<owner>``, ``sysctls:``) and as docker-py create arguments. Every name
starts with ``bench`` and every container carries a label naming its bench stack, so
clean-up removes exactly what the benchmark created and nothing else.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Iterable

OWNER_IMAGE = "stackctl-local/pause:3.10"
MEMBER_IMAGE = "stackctl-local/busybox:1.35"
HELPER_IMAGE = "stackctl-local/busybox:1.35"

# Names used by each way. The stackctl stack name doubles as its container-name prefix.
STACKCTL_STACK = "benchs"
COMPOSE_PROJECT = "benchc"
DOCKERPY_STACK = "benchd"
DOCKERPY_LABEL = "bench.stack"

# Stages of the sysctl-change measures:
#   0  as created: somaxconn 1024, tcp_fin_timeout 30 in every group;
#   1  one value of one group changed: somaxconn 2048 in the first group (g000) only;
#   2  then one value changed in every group: tcp_fin_timeout 45 everywhere.
STAGES = (0, 1, 2)


def sysctls(group: str = "", stage: int = 0) -> dict[str, str]:
    """The sysctls of ``group`` at ``stage`` (values differ from the kernel defaults 4096/60)."""
    return {"net.core.somaxconn": "2048" if stage >= 1 and group == "g000" else "1024",
            "net.ipv4.tcp_fin_timeout": "45" if stage >= 2 else "30"}


WEB_COMMAND = ["httpd", "-f", "-p", "80", "-h", "/www"]
SIDE_COMMAND = ["sleep", "2147483647"]
MEMBERS = {"web": WEB_COMMAND, "side": SIDE_COMMAND}


def group_names(n: int) -> list[str]:
    return [f"g{i:03d}" for i in range(n)]


# ------------------------------------------------------------------------- ports
def free_ports(count: int, start: int = 41000, stop: int = 60000,
               avoid: Iterable[int] = ()) -> list[int]:
    """``count`` TCP ports on 127.0.0.1 that bind right now (not necessarily contiguous)."""
    avoid = set(avoid)
    out: list[int] = []
    port = start
    while len(out) < count:
        if port >= stop:
            raise RuntimeError(f"fewer than {count} free ports in {start}..{stop}")
        if port not in avoid:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                    out.append(port)
                except OSError:
                    pass
        port += 1
    return out


# ---------------------------------------------------------------------- stackctl
def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string for these values


def write_stackctl_spec(directory: Path, ports: list[int], stage: int = 0) -> Path:
    """Write ``stack.toml`` for the N groups into ``directory``; return the file."""
    lines = [
        f'[stack]\nname = "{STACKCTL_STACK}"\n',
        "[defaults]",
        f"owner_image  = {_toml_str(OWNER_IMAGE)}",
        f"helper_image = {_toml_str(HELPER_IMAGE)}\n",
    ]
    for g, port in zip(group_names(len(ports)), ports):
        values = sysctls(g, stage)
        sc = ", ".join(f'"{k}" = {_toml_str(v)}' for k, v in values.items())
        lines += [f"[groups.{g}]", f'ports   = ["127.0.0.1:{port}:80"]', f"sysctls = {{ {sc} }}\n"]
        for m, cmd in MEMBERS.items():
            lines += [f"[groups.{g}.members.{m}]", f"image   = {_toml_str(MEMBER_IMAGE)}",
                      f"command = {json.dumps(cmd)}", "init    = true\n"]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "stack.toml"
    path.write_text("\n".join(lines))
    return path


# ----------------------------------------------------------------------- compose
def write_compose_file(directory: Path, ports: list[int], stage: int = 0) -> Path:
    """Write ``compose.yaml`` (JSON is YAML) for the same N groups; return the file."""
    services: dict[str, Any] = {}
    for g, port in zip(group_names(len(ports)), ports):
        values = sysctls(g, stage)
        services[g] = {
            "image": OWNER_IMAGE,
            "network_mode": "bridge",  # like stackctl and docker-py: no project network
            "ports": [f"127.0.0.1:{port}:80"],
            "sysctls": dict(values),
            "ipc": "shareable",
            "restart": "unless-stopped",
        }
        for m, cmd in MEMBERS.items():
            services[f"{g}-{m}"] = {
                "image": MEMBER_IMAGE,
                "command": cmd,
                "init": True,
                "network_mode": f"service:{g}",
                "ipc": f"service:{g}",
                "depends_on": [g],
            }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "compose.yaml"
    path.write_text(json.dumps({"name": COMPOSE_PROJECT, "services": services}, indent=1))
    return path


# ----------------------------------------------------------------------- docker-py
def dockerpy_owner(api: Any, g: str, port: int) -> dict[str, Any]:
    """create_container() keyword arguments for a group's owner (as stackctl makes it)."""
    return dict(
        image=OWNER_IMAGE, name=f"{DOCKERPY_STACK}-{g}", detach=True,
        labels={DOCKERPY_LABEL: DOCKERPY_STACK, "bench.group": g, "bench.role": "owner"},
        ports=[(80, "tcp")],
        host_config=api.create_host_config(
            port_bindings={"80/tcp": [("127.0.0.1", port)]}, sysctls=sysctls(g),
            ipc_mode="shareable", restart_policy={"Name": "unless-stopped"}),
    )


def dockerpy_member(api: Any, g: str, m: str) -> dict[str, Any]:
    owner = f"{DOCKERPY_STACK}-{g}"
    return dict(
        image=MEMBER_IMAGE, name=f"{owner}-{m}", command=MEMBERS[m], detach=True,
        labels={DOCKERPY_LABEL: DOCKERPY_STACK, "bench.group": g, "bench.role": "member"},
        host_config=api.create_host_config(
            network_mode=f"container:{owner}", ipc_mode=f"container:{owner}", init=True),
    )


# ------------------------------------------------------------------ observations
LABEL_FILTERS = {
    "stackctl": f"stackctl.stack={STACKCTL_STACK}",
    "compose": f"com.docker.compose.project={COMPOSE_PROJECT}",
    "docker-py": f"{DOCKERPY_LABEL}={DOCKERPY_STACK}",
}


def snapshot(api: Any, way: str) -> dict[str, tuple[str, str]]:
    """name -> (id, State.StartedAt) of the way's long-lived containers (helpers excluded)."""
    out = {}
    for c in api.containers(all=True, filters={"label": LABEL_FILTERS[way]}):
        if c["Labels"].get("stackctl.role") == "helper":
            continue
        d = api.inspect_container(c["Id"])
        out[d["Name"].lstrip("/")] = (d["Id"], d["State"].get("StartedAt", ""))
    return out


def disturbed(before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]) -> tuple[int, int]:
    """(recreated, restarted): containers whose id changed or vanished / same id, new start."""
    recreated = restarted = 0
    for name, (cid, started) in before.items():
        now = after.get(name)
        if now is None or now[0] != cid:
            recreated += 1
        elif now[1] != started:
            restarted += 1
    return recreated, restarted


def verify(api: Any, way: str, n: int, stage: int = 0) -> list[str]:
    """Problems with the running stack: counts, states, live sysctls, shared namespaces."""
    problems: list[str] = []
    listed = [c for c in api.containers(all=True, filters={"label": LABEL_FILTERS[way]})
              if c["Labels"].get("stackctl.role") != "helper"]
    if len(listed) != 3 * n:
        problems.append(f"{way}: {len(listed)} containers, wanted {3 * n}")
    details = [api.inspect_container(c["Id"]) for c in listed]
    by_id = {d["Id"]: d for d in details}
    for d in details:
        name = d["Name"].lstrip("/")
        if not d["State"].get("Running"):
            problems.append(f"{way}: {name} is {d['State'].get('Status')}")
            continue
        pid = d["State"]["Pid"]
        mode = d["HostConfig"].get("NetworkMode", "")
        if mode.startswith("container:"):
            owner = by_id.get(mode.split(":", 1)[1])
            if owner is None:
                problems.append(f"{way}: {name} joined a container that is not in the stack")
            elif os.readlink(f"/proc/{pid}/ns/net") != os.readlink(f"/proc/{owner['State']['Pid']}/ns/net"):
                problems.append(f"{way}: {name} is not in its owner's network namespace")
        else:
            import subprocess
            want = sysctls(_group_of(d), stage)
            paths = ["/proc/sys/" + k.replace(".", "/") for k in want]
            proc = subprocess.run(["nsenter", "--target", str(pid), "--net", "--", "cat", *paths],
                                  capture_output=True, text=True, check=False)
            live = proc.stdout.split()
            if live != list(want.values()):
                problems.append(f"{way}: {name}: live sysctls {live}, wanted {list(want.values())}")
    return problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])


def _group_of(d: dict[str, Any]) -> str:
    labels = d["Config"].get("Labels") or {}
    return (labels.get("stackctl.group") or labels.get("bench.group")
            or labels.get("com.docker.compose.service", ""))


def remove_all(api: Any, way: str) -> int:
    """Force-remove every container carrying the way's bench label; return how many."""
    from concurrent.futures import ThreadPoolExecutor

    import docker.errors

    listed = api.containers(all=True, filters={"label": LABEL_FILTERS[way]})

    def rm(cid: str) -> None:
        try:
            api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            pass

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(rm, [c["Id"] for c in listed]))
    return len(listed)
