"""Which kernel settings a namespace group may declare, and how values compare.

A group's sysctls are written into the owner's network and IPC namespaces. A sysctl that
is not namespaced would change the whole host, so it is refused at validation time rather
than discovered (or worse, silently applied) at run time.
"""

from __future__ import annotations

import enum
import re

from stackctl.spec.tomltypes import toml_type

NAME_RE = re.compile(r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)+")

# The IPC-namespaced sysctls Docker (runc) lets a container set. Other kernel.shm*,
# kernel.msg* and kernel.sem* names (the *_next_id ones) live in the IPC namespace too,
# but runc refuses them, so creating the owner would fail.
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
IPC_PREFIXES = ("fs.mqueue.",)
NET_PREFIX = "net."
UTS_SYSCTLS = frozenset({"kernel.hostname", "kernel.domainname"})

ALLOWED = "net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.*"

# Every name a group accepts, for the JSON Schema (ECMAScript regex syntax).
SCHEMA_NAME_PATTERN = (
    r"^(?:net(?:\.[A-Za-z0-9_-]+)+|fs\.mqueue(?:\.[A-Za-z0-9_-]+)+|kernel\.(?:"
    + "|".join(sorted(n.split(".", 1)[1] for n in IPC_SYSCTLS))
    + "))$"
)


class Namespace(enum.Enum):
    """The kernel namespace a sysctl lives in, or HOST when it is not namespaced."""

    NET = "net"
    IPC = "ipc"
    UTS = "uts"
    HOST = "host"


def classify(name: str) -> Namespace:
    """Return the namespace that holds ``name``; HOST means it would change the host."""
    if name.startswith(NET_PREFIX):
        return Namespace.NET
    if name in IPC_SYSCTLS or name.startswith(IPC_PREFIXES):
        return Namespace.IPC
    if name in UTS_SYSCTLS:
        return Namespace.UTS
    return Namespace.HOST


def name_problem(name: str) -> tuple[str, str] | None:
    """Why ``name`` cannot be declared on a group, as (message, hint); None if it can."""
    if "/" in name:
        return (f"sysctl name {name!r} uses slashes",
                f"write it with dots: {name.replace('/', '.')!r}")
    if not NAME_RE.fullmatch(name):
        return (f"{name!r} is not a valid sysctl name",
                "use the dotted form of a name under /proc/sys, e.g. 'net.core.somaxconn'")
    kind = classify(name)
    if kind is Namespace.UTS:
        return (f"{name!r} is in the UTS namespace, which the members of a group do not share",
                "remove it: each container keeps its own hostname")
    if kind is Namespace.HOST and name.startswith(("kernel.shm", "kernel.msg", "kernel.sem")):
        return (f"{name!r} is not one of the IPC sysctls Docker lets a container set",
                "use one of: " + ", ".join(sorted(IPC_SYSCTLS)))
    if kind is Namespace.HOST:
        return (f"{name!r} is not namespaced: writing it would change the whole host",
                f"set it on the host itself, e.g. in /etc/sysctl.d/; a group may set only {ALLOWED}")
    return None


def normalize_value(value: object) -> str:
    """Canonical text of a sysctl value, so spec and kernel output compare equal.

    ``1024``, ``"1024"`` and the kernel's ``"1024\\t65000"`` style (tab separated,
    trailing newline) all normalize to single-space separated text. This text is part
    of the helper's config hash: keep it stable.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected an integer or a string, got {toml_type(value)}")
    return " ".join(str(value).split())


