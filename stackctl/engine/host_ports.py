"""Which host ports this host's programs hold, and who holds them (a local engine only).

The engine knows the ports its containers publish; a port held by any other program on
the host is only found when an owner fails to start. ``/proc/net/{tcp,udp}[6]`` lists
the sockets of this process's network namespace (the host's, when stackctl runs on the
engine's host), and ``/proc/<pid>/fd`` links name the process holding one (readable
for every process as root; otherwise the holder is "a process on this host").
"""

from __future__ import annotations

import os
import socket
from typing import Iterable

from stackctl.observed import Held
from stackctl.spec.ports import PortBinding

_LISTEN = {"tcp": "0A", "udp": "07"}  # TCP_LISTEN; an unconnected UDP socket is bound


def _address(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return ip[len("::ffff:"):] if ip.startswith("::ffff:") and "." in ip else ip


def _sockets(wanted: set[tuple[int, str]]) -> list[tuple[PortBinding, str]]:
    """(binding, socket inode) of each bound socket on a wanted (port, protocol)."""
    out = []
    for proto in ("tcp", "udp"):
        for suffix in ("", "6"):
            try:
                with open(f"/proc/net/{proto}{suffix}", encoding="ascii") as fh:
                    lines = fh.read().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 10 or fields[3] != _LISTEN[proto]:
                    continue
                ip, _, port_hex = fields[1].rpartition(":")
                port = int(port_hex, 16)
                if (port, proto) in wanted:
                    out.append((PortBinding(port, 0, proto, _address(ip)), fields[9]))
    return out


def _holders(inodes: set[str]) -> dict[str, str]:
    """socket inode -> "process PID (NAME)", for the processes this process can see."""
    found: dict[str, str] = {}
    links = {f"socket:[{i}]": i for i in inodes}
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                inode = links.get(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
            if inode and inode not in found:
                try:
                    with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
                        name = fh.read().strip()
                except OSError:
                    name = "?"
                found[inode] = f"process {pid} ({name}) on this host"
        if len(found) == len(inodes):
            break
    return found


def held(wanted: Iterable[tuple[int, str]]) -> list[Held]:
    """The host sockets bound on the wanted (port, protocol)s, with their holders."""
    sockets = _sockets(set(wanted))
    names = _holders({inode for _, inode in sockets}) if sockets else {}
    return [Held(b, names.get(inode, "a process on this host")) for b, inode in sockets]
