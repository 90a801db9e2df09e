"""Facts read from this host's kernel about a local engine's containers (root only).

Two things the Engine API cannot give cheaply:

- which network namespace each container is in. ``/proc/<pid>/ns/net`` names it, and a
  container's pid is found by scanning ``/proc/*/cgroup`` for its id (runc puts every
  container in a cgroup named after its id, under any cgroup driver and version). One scan
  costs about 30 ms for 300 containers and replaces one inspect request per member.
- the live values of sysctls inside a container's namespaces. A thread joins the owner's
  network and IPC namespaces with ``setns(2)`` and reads ``/proc/sys``, whose ``net.*``
  and IPC entries are resolved in the *reading thread's* namespaces. That takes about
  0.3 ms per group, where an ``nsenter`` process takes 2-10 ms and a helper container
  about 120 ms. The joining thread is a fresh one that ends right after: no other code
  ever runs inside a container's namespace.

Everything here is best-effort: a fact that cannot be read is reported as unknown, and
the engine adapter falls back to the Engine API or to a helper container.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Callable, Iterable, Optional, Sequence

from stackctl.spec.sysctls import normalize_value

CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
_ID = re.compile(rb"[0-9a-f]{64}")


def _setns_function() -> Optional[Callable[[int, int], None]]:
    if hasattr(os, "setns"):  # Python 3.12+
        return os.setns
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        setns = libc.setns
    except (OSError, AttributeError):
        return None

    def call(fd: int, nstype: int) -> None:
        if setns(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return call


def available() -> bool:
    """Whether this process can join other processes' namespaces (root, Linux)."""
    return os.geteuid() == 0 and os.path.exists("/proc/self/ns/net")


def container_pids(ids: Iterable[str]) -> dict[str, int]:
    """Container id -> the pid of one of its processes, for the ids found running here."""
    wanted = {cid.encode() for cid in ids}
    found: dict[str, int] = {}
    if not wanted:
        return found
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:  # os.read, not open(): this loop reads a file per process on the host
            fd = os.open(f"/proc/{entry}/cgroup", os.O_RDONLY)
            try:
                text = os.read(fd, 65536)
            finally:
                os.close(fd)
        except OSError:
            continue  # exited meanwhile, or not ours to read
        # Nested engines put ids inside ids (/docker/<outer>/docker/<inner>): any of them
        # that is one of ours is the one.
        for cid in _ID.findall(text):
            if cid in wanted and cid.decode() not in found:
                found[cid.decode()] = int(entry)
        if len(found) == len(wanted):
            break
    return found


def runs_in(pid: int, cid: str) -> bool:
    """Whether ``pid``, as this host's /proc numbers it, is a process of container ``cid``.

    The engine reports pids in its own pid namespace. When stackctl runs in a container
    with the engine's socket mounted, the same number may be another process (or none)
    here; this check keeps a fact from ever being read from the wrong namespace.
    """
    try:
        fd = os.open(f"/proc/{pid}/cgroup", os.O_RDONLY)
        try:
            return cid.encode() in _ID.findall(os.read(fd, 65536))
        finally:
            os.close(fd)
    except OSError:
        return False


def netns(pid: int) -> Optional[str]:
    """The identity of ``pid``'s network namespace (``net:[4026532…]``), or None."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def read_sysctls(jobs: Sequence[tuple[int, Sequence[str]]]) -> list[Optional[dict[str, str]]]:
    """For each (pid, keys): the live values in pid's network and IPC namespaces.

    A key the kernel does not have is left out of its dict; a job whose namespaces could
    not be joined (the process is gone) gives None.
    """
    results: list[Optional[dict[str, str]]] = [None] * len(jobs)
    setns = _setns_function()
    if setns is None or not jobs:
        return results

    def work() -> None:
        for i, (pid, keys) in enumerate(jobs):
            results[i] = _read_in(setns, pid, keys)

    # A new thread per batch: it enters container namespaces and then simply ends, so no
    # pooled thread is ever left inside one.
    thread = threading.Thread(target=work, name="stackctl-namespace-reader", daemon=True)
    thread.start()
    thread.join()
    return results


def _read_in(setns: Callable[[int, int], None], pid: int, keys: Sequence[str]) -> Optional[dict[str, str]]:
    fds: list[int] = []
    try:
        try:
            for ns in ("net", "ipc"):
                fds.append(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY))
            setns(fds[0], CLONE_NEWNET)
            setns(fds[1], CLONE_NEWIPC)
        except OSError:
            return None
        values = {}
        for key in keys:
            try:
                with open("/proc/sys/" + key.replace(".", "/"), encoding="utf-8") as f:
                    values[key] = normalize_value(f.read())
            except OSError:
                continue  # the kernel has no such sysctl (in this namespace)
        return values
    finally:
        for fd in fds:
            os.close(fd)
