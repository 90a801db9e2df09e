"""Which kernel settings a namespace group may declare, and how values compare.

A group's sysctls are written into the owner's network and IPC namespaces. A sysctl that
is not namespaced would change the whole host, so it is refused at validation time rather
than discovered (or worse, silently applied) at run time.
"""

from __future__ import annotations

import enum
import re

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)+$")

IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


class Namespace(enum.Enum):
    """The kernel namespace a sysctl lives in, or HOST when it is not namespaced."""

    NET = "net"
    IPC = "ipc"
    UTS = "uts"
    HOST = "host"


def classify(name: str) -> Namespace:
    """Return the namespace that holds ``name``; HOST means it would change the host."""
    if name.startswith("net."):
        return Namespace.NET
    if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
        return Namespace.IPC
    if name in ("kernel.hostname", "kernel.domainname"):
        return Namespace.UTS
    return Namespace.HOST


def name_problem(name: str) -> tuple[str, str] | None:
    """Why ``name`` cannot be declared on a group, as (message, hint); None if it can."""
    if "/" in name:
        return (
            f"sysctl name {name!r} uses slashes",
            f"write it with dots: {name.replace('/', '.')!r}",
        )
    if not NAME_RE.match(name):
        return (
            f"{name!r} is not a valid sysctl name",
            "use the dotted form, e.g. 'net.core.somaxconn'",
        )
    kind = classify(name)
    if kind is Namespace.UTS:
        return (
            f"{name!r} is in the UTS namespace, which a group does not share",
            "set the hostname on the owner is not supported; remove it",
        )
    if kind is Namespace.HOST:
        return (
            f"{name!r} is not namespaced: writing it would change the whole host",
            "only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* can be "
            "set per group; set host-wide settings on the host (sysctl.conf)",
        )
    return None


def normalize_value(value: object) -> str:
    """Canonical text of a sysctl value, so spec and kernel output compare equal.

    ``1024``, ``"1024"`` and the kernel's ``"1024\\t65000"`` style (tab separated,
    trailing newline) all normalize to single-space separated text.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise TypeError(f"expected an integer or a string, got {kind}")
    return " ".join(str(value).split())
