"""Spec data -> TOML text, written by hand so that it can carry comments.

``tomli-w`` (the usual TOML writer) cannot write comments, and the converted spec needs
them: one per group and member naming the Compose service it came from, and every key
that was not converted. The subset written here is small (tables, strings, integers,
floats, booleans, arrays, inline tables) and deterministic: values keep the order they
are given in. :func:`dumps` output is parsed back with ``tomllib`` by the converter before
anything is written, so a mistake here is a loud error, never a broken spec on disk.
"""

from __future__ import annotations

import math
import re
import textwrap
from typing import Any, Optional

import attrs

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}
INLINE_WIDTH = 100  # a table wider than this as an inline table becomes a [sub.table]
INLINE_ITEMS = 3  # so is a table of more keys: one per line reads (and diffs) better
COMMENT_WIDTH = 92


def string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else string(name)


def value(v: Any) -> str:
    """One value on one line (tables become inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v!r} in a spec")
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} in a spec")


@attrs.define
class Table:
    """A ``[header]`` with comment lines above it, and its keys in order.

    A key's value that is a table is written inline when it is short (at most
    :data:`INLINE_ITEMS` keys on one line of :data:`INLINE_WIDTH`), otherwise as a
    ``[header.key]`` table after this one.
    ``notes`` are trailing comments for single keys.
    """

    path: tuple[str, ...]
    values: dict[str, Any] = attrs.field(factory=dict)
    comments: list[str] = attrs.field(factory=list)
    notes: dict[str, str] = attrs.field(factory=dict)


def _comments(lines: list[str]) -> list[str]:
    """Comment lines, long ones wrapped (continuations indented), for reading in a diff."""
    out: list[str] = []
    for line in lines:
        if not line:
            out.append("#")
            continue
        indent = len(line) - len(line.lstrip(" "))
        out += ["# " + w for w in textwrap.wrap(line, COMMENT_WIDTH, initial_indent="",
                                                 subsequent_indent=" " * (indent + 2),
                                                 break_long_words=False,
                                                 break_on_hyphens=False)]
    return out


def _header(path: tuple[str, ...]) -> str:
    return "[" + ".".join(key(p) for p in path) + "]"


def _table(t: Table, out: list[str]) -> None:
    out += _comments(t.comments)
    out.append(_header(t.path))
    later: list[Table] = []
    for k, v in t.values.items():
        line = f"{key(k)} = {value(v)}"
        if isinstance(v, dict) and v and (len(line) > INLINE_WIDTH or len(v) > INLINE_ITEMS):
            later.append(Table(t.path + (k,), dict(v)))
            continue
        note: Optional[str] = t.notes.get(k)
        if note:
            out += _comments([note])
        out.append(line)
    for sub in later:
        out.append("")
        _table(sub, out)


def dumps(head: list[str], tables: list[Table]) -> str:
    """The whole document: ``head`` comment lines, then each table, a blank line apart."""
    out = _comments(head)
    for t in tables:
        if out:
            out.append("")
        _table(t, out)
    return "\n".join(out) + "\n"
