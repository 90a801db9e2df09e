"""Which kernel settings a namespace group may declare, and how values compare.

A group's sysctls are written into the owner's network and IPC namespaces. A sysctl that
is not namespaced would change the whole host, so it is refused at validation time rather
than discovered (or worse, silently applied) at run time.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from typing import Optional

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




# Sysctls that hold several numbers in one value, and how many the kernel takes. Fewer
# would be accepted and leave the rest as they were (so the value read back never
# equals the spec's: a change on every plan); more are refused at write time.
FIELDS = {
    "kernel.sem": 4,
    "net.ipv4.ip_local_port_range": 2,
    "net.ipv4.ping_group_range": 2,
    "net.ipv4.tcp_mem": 3,
    "net.ipv4.tcp_rmem": 3,
    "net.ipv4.tcp_wmem": 3,
    "net.ipv4.udp_mem": 3,
    "net.sctp.sctp_mem": 3,
    "net.sctp.sctp_rmem": 3,
    "net.sctp.sctp_wmem": 3,
}
# Sysctls the kernel holds as unsigned longs; every other integer sysctl is an int or an
# unsigned int, so an integer outside -2**31 .. 2**32-1 is refused when written.
LONG_SYSCTLS = frozenset({"kernel.shmall", "kernel.shmmax", "net.ipv4.tcp_mem",
                          "net.ipv4.udp_mem", "net.sctp.sctp_mem"})
INT_RANGE = (-(2 ** 31), 2 ** 32 - 1)
LONG_RANGE = (0, 2 ** 64 - 1)

_NON_DECIMAL = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-9]+|\+[0-9]+)")
_INTEGER = re.compile(r"-?[0-9]+")


def _ascii_digits(token: str) -> str:
    """``token`` with every Unicode decimal digit as its ASCII digit ("" if not all are)."""
    out = []
    for ch in token:
        digit = unicodedata.digit(ch, None) if not ch.isascii() else None
        if digit is not None:
            out.append(str(digit))
        elif ch.isascii():
            out.append(ch)
        else:
            return ""
    return "".join(out)


def token_problem(token: str) -> Optional[tuple[str, str]]:
    """Why one whitespace-separated field of a value would not be read back as written,
    as (message, hint); None when it is fine. The kernel reads integers with base 0
    (``01024`` is octal, ``0x400`` hex) and prints them in plain decimal, reads only
    ASCII, and prints ``-0`` as ``0``: such a value would never compare equal to the
    live one, and every plan would show a change (or the write would fail)."""
    if not token.isascii():
        ascii_form = _ascii_digits(token)
        hint = (f"write it with ASCII digits: {ascii_form}" if ascii_form
                else "sysctl values are ASCII text")
        return f"{token!r} is not ASCII: the kernel reads only ASCII digits and text", hint
    if token == "-0":
        return f"{token!r} is not a plain decimal number", "the kernel reads it as 0: write 0"
    if not _NON_DECIMAL.fullmatch(token):
        return None
    sign, digits = ("-" if token.startswith("-") else ""), token.lstrip("+-")
    message = f"{token!r} is not a plain decimal number"
    if digits[1:2] in ("x", "X"):
        return message, f"the kernel would read it as hex: write {sign}{int(digits, 16)}"
    if token.startswith("+"):
        return message, f"drop the '+': write {digits}"
    plain = digits.lstrip("0") or "0"
    if set(digits) <= set("01234567"):
        return message, (f"the kernel would read it as octal, that is {sign}{int(digits, 8)}: "
                         f"write {sign}{plain} without the leading zero")
    return message, f"write {sign}{plain} without the leading zero"


def value_problem(name: str, value: str) -> Optional[tuple[str, str]]:
    """Why the kernel would refuse (or not keep) normalized ``value`` for sysctl ``name``:
    a wrong number of fields, or an integer past the kernel's range. None when fine."""
    fields = value.split()
    want = FIELDS.get(name)
    if want is not None and len(fields) != want:
        return (f"{name} takes {want} values, got {len(fields)}",
                f"give all {want} in one string, e.g. the current ones from "
                f"`sysctl {name}`, changed where you need")
    low, high = LONG_RANGE if name in LONG_SYSCTLS else INT_RANGE
    for token in fields:
        if _INTEGER.fullmatch(token) and not low <= int(token) <= high:
            return (f"{token} is out of the kernel's range for {name}",
                    f"use an integer from {low} to {high}")
    return None
