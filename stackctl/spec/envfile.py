"""Env files (a member's ``env_file``): read at load, hashed into the member's config.

An env file is part of the spec, so a change in its content is a planned replacement of
the members that read it. Its values are secrets: they go to the engine when a container
is created and nowhere else. Plans, plan files and labels carry the file's path and a
digest of its content; ``apply`` reads the file again and refuses to go on if the content
no longer matches the digest the plan was made with. No message here quotes a value.

The format is Compose's (a subset of dotenv): ``KEY=VALUE`` lines, optionally prefixed by
``export``; blank lines and ``#`` comments are skipped; a value may be quoted with ``'``
(taken literally) or ``"`` (``\\n``, ``\\t``, ``\\"`` and ``\\\\`` are unescaped); an
unquoted value ends at `` #``. Values are not interpolated.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Iterable

import attrs

from stackctl.errors import StackctlError

_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(.*?)\s*", re.S)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class EnvFileError(StackctlError):
    """An env file that cannot be used; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} ({hint})")
        self.message, self.hint = message, hint


@attrs.frozen
class EnvFile:
    """One env file of a member, as loaded: no values, only where it is and its digest."""

    path: str  # as the spec wrote it (what plans show)
    absolute: str  # resolved against the directory of the spec file that named it
    digest: str  # digest of the parsed KEY=VALUE pairs (see digest())


def _after_quote(rest: str, number: int) -> None:
    rest = rest.strip()
    if rest and not rest.startswith("#"):
        raise EnvFileError(f"line {number}: text follows the closing quote",
                           "quote the whole value, or start a comment with '#'")


def _unquote(raw: str, number: int) -> str:
    if raw[:1] == "'":
        end = raw.find("'", 1)
        if end < 0:
            raise EnvFileError(f"line {number}: the value's single quote is not closed",
                               "close the quote on the same line: a value spans one line")
        _after_quote(raw[end + 1:], number)
        return raw[1:end]
    if raw[:1] == '"':
        out, i = [], 1
        while i < len(raw):
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw):
                out.append(_ESCAPES.get(raw[i + 1], "\\" + raw[i + 1]))
                i += 2
                continue
            if ch == '"':
                _after_quote(raw[i + 1:], number)
                return "".join(out)
            out.append(ch)
            i += 1
        raise EnvFileError(f"line {number}: the value's double quote is not closed",
                           "close the quote on the same line: a value spans one line")
    cut = re.search(r"\s#", raw)
    return (raw[:cut.start()] if cut else raw).strip()


def parse(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines -> a mapping; raises :class:`EnvFileError` naming the line."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if not m:
            # Never quote the line: it may hold a secret. Its key (before '=') is safe.
            key = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
            what = (f"line {number}: {key!r} is not a valid variable name" if key
                    else f"line {number} is not KEY=VALUE")
            raise EnvFileError(what, "write KEY=VALUE, with KEY made of letters, digits, '_', "
                                     "'.' and '-', not starting with a digit")
        values[m.group(1)] = _unquote(m.group(2), number)
    return values


def digest(values: dict[str, str]) -> str:
    """What plans and labels carry instead of the values. Comments, blank lines, quoting
    and order do not change it; any value or key does."""
    text = json.dumps(sorted(values.items()), separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def read(path: Path, shown: str = "") -> dict[str, str]:
    """The values of the env file at ``path``, named ``shown`` in errors (the path as the
    spec wrote it); raises :class:`EnvFileError`."""
    name = shown or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EnvFileError(f"env file {name!r} does not exist",
                           "create it, or fix the path: it is relative to the spec file "
                           "that declares the member") from None
    except IsADirectoryError:
        raise EnvFileError(f"env file {name!r} is a directory",
                           "name a file of KEY=VALUE lines") from None
    except OSError as exc:
        raise EnvFileError(f"cannot read env file {name!r}: {exc.strerror}",
                           "check that you may read it") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvFileError(f"env file {name!r} is not UTF-8 text (the byte at offset "
                           f"{exc.start} is invalid)", "save it as UTF-8") from None
    try:
        return parse(text)
    except EnvFileError as exc:
        raise EnvFileError(f"env file {name!r}, {exc.message}", exc.hint) from None


def load(path: str, base: Path) -> EnvFile:
    """Read and digest ``path`` (relative to ``base``, the declaring spec file's folder)."""
    absolute = (base / path).resolve() if not Path(path).is_absolute() else Path(path)
    return EnvFile(path=path, absolute=str(absolute), digest=digest(read(absolute, path)))


def environment(files: Iterable[dict[str, str]]) -> dict[str, str]:
    """The values of a member's env files, later files winning, read again at apply.

    ``files`` are ``{"path": absolute path, "digest": ...}`` as a resource carries them;
    a file whose content changed since it was planned is refused (the plan is stale).
    """
    merged: dict[str, str] = {}
    for f in files:
        values = read(Path(f["path"]))
        if digest(values) != f["digest"]:
            raise EnvFileError(f"env file {f['path']!r} changed after the plan was made, so "
                               "the plan does not describe what would be applied",
                               "make a new plan (stackctl plan), then apply")
        merged.update(values)
    return merged
