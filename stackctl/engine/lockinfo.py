"""Who holds a stack lock, and whether that holder can still be running.

The lock container's labels name its holder: process id, host name, the kernel's boot id
and the process's start time (in clock ticks since boot, from ``/proc/<pid>/stat``). From
those, a process on the *same host and boot* can tell for certain that a holder is gone:
no such pid, a zombie, or a pid reused by a process that started at another time. Only
such a lock is taken over automatically, or released by ``force-unlock`` without its id.
A holder on another host, or one this process cannot judge, is never assumed dead.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping, Optional

import attrs

LABEL_HOLDER = "stackctl.lock.holder"
LABEL_BOOT = "stackctl.lock.boot"
LABEL_STARTED = "stackctl.lock.started"
LABEL_OPERATION = "stackctl.lock.operation"
LABEL_SINCE = "stackctl.lock.since"


def lock_name(stack: str) -> str:
    """The lock container's name. The dot keeps it apart from every container of every
    stack: stack, group and member names never hold one (so stack ``a-stackctl`` with a
    group ``lock`` is ``a-stackctl-lock``, never ``a.stackctl-lock``)."""
    return f"{stack}.stackctl-lock"


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _stat(pid: int) -> Optional[tuple[str, str]]:
    """(state, start time) of a process, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], fields[19]


def holder_labels() -> dict[str, str]:
    """The labels that say this process holds a lock."""
    stat = _stat(os.getpid())
    return {LABEL_HOLDER: f"{os.getpid()}@{socket.gethostname()}", LABEL_BOOT: boot_id(),
            LABEL_STARTED: stat[1] if stat else ""}


@attrs.frozen
class Holder:
    """A lock's holder as its labels describe it, judged from this process."""

    pid: str
    host: str
    operation: str
    since: str
    # "dead": certainly gone (same host and boot); "alive": running on this host;
    # "unknown": another host, another boot, or labels this process cannot judge.
    state: str
    why: str = ""

    @property
    def text(self) -> str:
        return f"{self.operation} by {self.pid}@{self.host}, since {self.since}"


def judge(labels: Mapping[str, str]) -> Holder:
    pid, _, host = labels.get(LABEL_HOLDER, "?").partition("@")
    op, since = labels.get(LABEL_OPERATION, "?"), labels.get(LABEL_SINCE, "?")

    def holder(state: str, why: str = "") -> Holder:
        return Holder(pid, host, op, since, state, why)

    if host != socket.gethostname() or not pid.isdigit():
        return holder("unknown", "it was taken on another host")
    boot = labels.get(LABEL_BOOT, "")
    if not boot or boot != boot_id():
        # Another boot of this host (or a lock from before boot ids were recorded): the
        # pid means nothing now, but a lock this old is a person's decision to clear.
        return holder("unknown", "it was taken before this host last booted")
    stat = _stat(int(pid))
    if stat is None:
        return holder("dead", f"process {pid} no longer runs on this host")
    state, started = stat
    if state in ("Z", "X"):
        return holder("dead", f"process {pid} has exited (a zombie not yet reaped)")
    if labels.get(LABEL_STARTED) and labels[LABEL_STARTED] != started:
        return holder("dead", f"process {pid} no longer runs on this host (its pid was reused)")
    return holder("alive", f"process {pid} is still running on this host")
