"""Facts read from this host's kernel about a local engine's containers (root only).

Two things the Engine API cannot give cheaply:

- which network namespace each container is in. ``/proc/<pid>/ns/net`` names it. A
  container's pid comes from its cgroup: runc puts every container in a cgroup named
  after its id, under any cgroup driver and version. Knowing one container's cgroup
  directory, the others' ``cgroup.procs`` are read directly (about 10 us each); failing
  that, every process's ``/proc/<pid>/cgroup`` is scanned for the ids (about 25 ms for
  1000 processes). Either replaces one inspect request per member.
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


def container_pids(ids: Iterable[str], known: Optional[tuple[int, str]] = None) -> dict[str, int]:
    """Container id -> the pid of one of its processes, for the ids found running here.

    ``known`` is (pid, id) of a container already found: its cgroup directory shows where
    the engine puts containers' cgroups, so the others are read straight from their
    ``cgroup.procs`` (cost per container, not per process on the host). Whatever that does
    not find is looked for by scanning every process's ``/proc/<pid>/cgroup``.
    """
    wanted = set(ids)
    found: dict[str, int] = {}
    where = _cgroup_dir(*known) if known and wanted else None
    if known and where:
        mount, path = where
        for cid in wanted:
            pid = _first_pid(f"{mount}{path.replace(known[1], cid)}/cgroup.procs")
            if pid and runs_in(pid, cid):
                found[cid] = pid
    rest = wanted - set(found)
    if rest:
        found.update(_scan(rest))
    return found


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def _first_pid(procs: str) -> int:
    try:
        first = _read(procs).split(b"\n", 1)[0]
    except OSError:
        return 0
    return int(first) if first.isdigit() else 0


def _cgroup_dir(pid: int, cid: str) -> Optional[tuple[str, str]]:
    """(mount point, path below it) of the cgroup directory of container ``cid``, whose
    process ``pid`` is; the path contains the id. None when it cannot be worked out."""
    try:
        lines = _read(f"/proc/{pid}/cgroup").decode(errors="replace").splitlines()
        mounts = _read("/proc/self/mountinfo").decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if cid not in path:
            continue
        for mount in mounts:
            fields = mount.split(" ")
            if " - " not in mount or len(fields) < 5:
                continue
            fstype, _, options = mount.split(" - ", 1)[1].split(" ")[:3]
            root, point = fields[3], fields[4]
            if controllers == "" and fstype == "cgroup2":
                pass  # the unified hierarchy
            elif fstype != "cgroup" or not set(controllers.split(",")) <= set(options.split(",")):
                continue
            if root != "/" and not path.startswith(root + "/"):
                continue
            return point, path[len(root):] if root != "/" else path
    return None


def _scan(ids: set[str]) -> dict[str, int]:
    wanted = {cid.encode() for cid in ids}
    found: dict[str, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:  # os.read, not open(): this loop reads a file per process on the host
            text = _read(f"/proc/{entry}/cgroup")
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
        return cid.encode() in _ID.findall(_read(f"/proc/{pid}/cgroup"))
    except OSError:
        return False


def netns(pid: int, cid: Optional[str] = None) -> Optional[str]:
    """The identity of ``pid``'s network namespace (``net:[4026532…]``), or None.

    With ``cid``, only while ``pid`` is a process of that container: the pid is checked
    again *after* the namespace was read, so a container's process that exited and whose
    pid was reused by another process in between cannot lend it its namespace.
    """
    try:
        ns = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    if cid is not None and not runs_in(pid, cid):
        return None
    return ns


def read_sysctls(jobs: Sequence[tuple[int, str, Sequence[str]]]) -> list[Optional[dict[str, str]]]:
    """For each (pid, container id, keys): the live values in pid's network and IPC
    namespaces, as long as pid is a process of that container.

    A key the kernel does not have is left out of its dict; a job whose namespaces could
    not be joined (the process is gone, or its pid now names another process) gives None.
    """
    results: list[Optional[dict[str, str]]] = [None] * len(jobs)
    setns = _setns_function()
    if setns is None or not jobs:
        return results

    def work() -> None:
        for i, (pid, cid, keys) in enumerate(jobs):
            results[i] = _read_in(setns, pid, cid, keys)

    # A new thread per batch: it enters container namespaces and then simply ends, so no
    # pooled thread is ever left inside one.
    thread = threading.Thread(target=work, name="stackctl-namespace-reader", daemon=True)
    thread.start()
    thread.join()
    return results


def _read_in(setns: Callable[[int, int], None], pid: int, cid: str,
             keys: Sequence[str]) -> Optional[dict[str, str]]:
    fds: list[int] = []
    try:
        try:
            for ns in ("net", "ipc"):
                fds.append(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY))
            # The namespaces are held open now, so they cannot change under us; only if
            # pid still is the container's process (checked after opening: its pid may
            # have been reused since it was found) are they the container's.
            if not runs_in(pid, cid):
                return None
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
