"""Spec files on disk -> one validated :class:`~stackctl.spec.model.Stack`.

Loading runs in stages: read and parse the TOML files; merge them, remembering which file
each table came from; substitute ``${VAR}`` from the environment; structure with the one
converter; apply the cross-field rules. A TOML syntax error stops loading (nothing after
it could be trusted); otherwise every stage runs even when an earlier one found problems,
setting aside the values it could not use, so an operator sees every problem of a spec
in one round trip. Problems that merely follow from one already reported (a port that is
unreadable because its variable is unset) are not repeated. All problems are raised
together as one :class:`~stackctl.errors.SpecError`, each naming its file and key path,
in file order and, within a file, in document order.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import attrs

from stackctl.errors import Problem, SpecError
from stackctl.spec import converter as conv
from stackctl.spec import envfile
from stackctl.spec.converter import format_path
from stackctl.spec.envfile import EnvFile
from stackctl.spec.model import Stack
from stackctl.spec.rules import check

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KeyPath = tuple[Union[str, int], ...]

__all__ = ["LoadedSpec", "format_path", "interpolate", "load", "spec_files", "validate_documents"]


@attrs.frozen
class LoadedSpec:
    """A validated stack and the files it came from."""

    stack: Stack
    files: tuple[str, ...]
    source: str
    # (group, member) -> its env files (paths and digests; values are never kept).
    env_files: Mapping[tuple[str, str], tuple[EnvFile, ...]] = attrs.field(factory=dict)


@attrs.frozen
class _Found:
    """A problem before it is rendered: ``path`` is None for file-level problems."""

    file: str
    path: Optional[KeyPath]
    message: str
    hint: str
    where: str = ""  # shown instead of the path, e.g. "line 3, column 5"

    def problem(self) -> Problem:
        return Problem(self.file, self.where or format_path(self.path or ()), self.message,
                       self.hint)


# ------------------------------------------------------------------------------ files
def spec_files(path: Union[str, Path]) -> list[Path]:
    """The files that make up the stack at ``path``: a file, or a directory's ``*.toml``.

    Hidden files (``.name.toml``) are skipped, as a shell glob would, so an editor's
    backup does not join the stack.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.glob("*.toml") if f.is_file() and not f.name.startswith("."))
        if not files:
            raise SpecError([Problem(str(p), "", "no *.toml spec files in this directory",
                                     "pass a spec file, or a directory holding *.toml files")])
        return files
    if p.is_file():
        return [p]
    raise SpecError([Problem(str(p), "", "no such file or directory",
                             "pass a spec file, or a directory of *.toml files")])


_TOML_HINTS: tuple[tuple[str, str], ...] = (
    ("Cannot declare", "declare each table once per file, with all its keys under one header"),
    ("Cannot overwrite a value", "set each key once per file"),
    ("Invalid value", 'quote strings, e.g. image = "nginx:1.27"'),
    ("Expected '=' after a key", "write KEY = VALUE; quote a key that contains spaces"),
    ("Unclosed array", "close the array with ']', and quote each string in it"),
    ("Unclosed inline table", "close it with '}' on the same line: an inline table "
                              "cannot span lines; use a [table] header for long ones"),
    ("Invalid initial character for a key part", "an inline table { ... } must fit on one "
                                                 "line; use a [table] header for long ones"),
    ("Unterminated string", "close the string with the quote it was opened with"),
    ("Expected ']' at the end of a table", "close the table header with ']'"),
    ("Expected ']]' at the end of an array", "close the header with ']]'"),
)
_TOML_POSITION = re.compile(r"^(.*) \((?:at line (\d+), column (\d+)|at end of document)\)$", re.S)
_TOML_DECLARE = re.compile(r"^Cannot declare (\(.*\)) twice$")


def _syntax_problem(file: str, text: str, exc: tomllib.TOMLDecodeError) -> _Found:
    """A TOML syntax error, always with a line and column (end of document included)."""
    match = _TOML_POSITION.match(str(exc))
    message, line, column = (match.group(1), match.group(2), match.group(3)) if match else (
        str(exc), None, None)
    if match and line is None:  # "at end of document": point just after the last character
        lines = text.rstrip().splitlines() or [""]
        line, column = str(len(lines)), str(len(lines[-1]) + 1)
    declared = _TOML_DECLARE.match(message)
    if declared:
        try:
            keys = ast.literal_eval(declared.group(1))
            message = f"table [{format_path(tuple(keys))}] is declared twice"
        except (ValueError, SyntaxError):
            pass
    hint = next((h for start, h in _TOML_HINTS if message.startswith(start)),
                "see https://toml.io for the TOML syntax")
    if message.startswith("table ["):
        hint = _TOML_HINTS[0][1]
    where = f"line {line}, column {column}" if line else ""
    return _Found(file, None, "invalid TOML: " + message[:1].lower() + message[1:], hint, where)


def _read(file: Path) -> tuple[Optional[dict[str, Any]], Optional[_Found]]:
    try:
        data = file.read_bytes()
    except OSError as exc:
        return None, _Found(str(file), None, f"cannot read the file: {exc.strerror}",
                            "check that it exists and that you may read it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, _Found(str(file), None, f"not UTF-8 text: the byte at offset {exc.start} "
                            "is invalid",
                            "save the file as UTF-8, as TOML requires")
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        return None, _syntax_problem(str(file), text, exc)


# ----------------------------------------------------------------------------- merging
class _Origins:
    """Which file defined which table or key, for naming the file in an error."""

    def __init__(self, default: str) -> None:
        self.default = default
        self.by_path: dict[KeyPath, str] = {}

    def set(self, path: KeyPath, file: str) -> None:
        self.by_path.setdefault(path, file)

    def file_for(self, path: KeyPath) -> str:
        for n in range(len(path), 0, -1):
            found = self.by_path.get(tuple(path[:n]))
            if found:
                return found
        return self.default


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _merge(docs: list[tuple[str, dict[str, Any]]], source: str
           ) -> tuple[dict[str, Any], _Origins, list[_Found]]:
    """Merge parsed files into one document.

    A group may be split across files (its settings in one, members in others), but each
    top-level table, group setting and member is defined in exactly one file.
    """
    found: list[_Found] = []
    merged: dict[str, Any] = {}
    stack_files = [f for f, d in docs if "stack" in d]
    origins = _Origins(stack_files[0] if stack_files else docs[0][0])
    if not stack_files:
        where = docs[0][0] if len(docs) == 1 else source
        found.append(_Found(where, None, "no [stack] table" + ("" if len(docs) == 1 else
                            " in any of the files"),
                            'add a [stack] table with name = "..."'
                            + ("" if len(docs) == 1 else " to one of them")))
    for file, doc in docs:
        for key, value in doc.items():
            if key == "groups" and _is_table(value) and _is_table(merged.get("groups", {})):
                origins.set(("groups",), file)
                _merge_groups(merged.setdefault("groups", {}), value, file, origins, found)
            elif key in merged:
                hint = ("a stack has exactly one [stack] table: keep one" if key == "stack"
                        else "define it in one file")
                found.append(_Found(file, (key,),
                                    f"also defined in {origins.file_for((key,))}", hint))
            else:
                merged[key] = value
                origins.set((key,), file)
    return merged, origins, found


def _merge_groups(into: dict[str, Any], groups: dict[str, Any], file: str,
                  origins: _Origins, found: list[_Found]) -> None:
    for gname, gtable in groups.items():
        gpath: KeyPath = ("groups", gname)
        if gname not in into:
            into[gname] = gtable if not _is_table(gtable) else {}
            origins.set(gpath, file)
            if not _is_table(gtable):
                continue
        elif not (_is_table(gtable) and _is_table(into[gname])):
            found.append(_Found(file, gpath, f"also defined in {origins.file_for(gpath)}",
                                "define each group in one file"))
            continue
        target = into[gname]
        for key, value in gtable.items():
            kpath = gpath + (key,)
            if key == "members" and _is_table(value) and _is_table(target.get("members", {})):
                members = target.setdefault("members", {})
                origins.set(kpath, file)
                for mname, mtable in value.items():
                    mpath = kpath + (mname,)
                    if mname in members:
                        found.append(_Found(file, mpath, f"member {mname!r} is also defined in "
                                            f"{origins.file_for(mpath)}",
                                            "define each member in one file"))
                    else:
                        members[mname] = mtable
                        origins.by_path[mpath] = file
            elif key in target:
                found.append(_Found(file, kpath, f"also defined in {origins.file_for(kpath)}",
                                    "set each key of a group in one file"))
            else:
                target[key] = value
                origins.by_path[kpath] = file


# ----------------------------------------------------------------------- interpolation
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
_FORMS = "write ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message} or ${NAME:+other}, or $$ for a literal $"


def _closing(text: str, start: int) -> int:
    """Index of the '}' closing the '${' that opens at ``start``, or -1; nested
    references (``${A:-${B}}``) are skipped whole, and ``$$`` is one character."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _substitute(text: str, env: Mapping[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with its variable references and ``$$`` replaced, and its problems.

    The forms of Compose (and of a POSIX shell): ``${VAR}``; ``${VAR:-default}`` (unset
    or empty) and ``${VAR-default}`` (unset); ``${VAR:?message}`` and ``${VAR?message}``,
    a problem carrying the message; ``${VAR:+other}`` and ``${VAR+other}``. The word
    after the operator may hold references itself (``${A:-${B}}``), substituted only
    when it is used. A ``$`` not followed by ``{`` or ``$`` is kept as it is.
    """
    problems: list[tuple[str, str]] = []
    if "$" not in text:
        return text, problems
    out: list[str] = []
    i = 0
    while i < len(text):
        start = text.find("$", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        if text.startswith("$$", start):
            out.append("$")
            i = start + 2
            continue
        if not text.startswith("${", start):
            out.append("$")
            i = start + 1
            continue
        end = _closing(text, start)
        if end < 0:
            problems.append((f"unterminated variable reference {text[start:]!r}",
                             "close it with '}', or write $$ for a literal $"))
            break
        out.append(_reference(text[start:end + 1], env, problems))
        i = end + 1
    return "".join(out), problems


def _reference(ref: str, env: Mapping[str, str], problems: list[tuple[str, str]]) -> str:
    """The value of one whole ``${...}`` reference (see :func:`_substitute`)."""
    body = ref[2:-1]
    name = _NAME.match(body)
    rest = body[name.end():] if name else body
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if not name or (rest and op is None):
        problems.append((f"cannot read variable reference {ref!r}", _FORMS))
        return ""
    var = name.group(0)
    word = rest[len(op):] if op else ""
    value = env.get(var)
    missing = value is None or (value == "" and op is not None and op.startswith(":"))

    def expand(text: str) -> str:
        result, found = _substitute(text, env)
        problems.extend(found)
        return result

    if op is None:
        if value is None:
            problems.append((f"environment variable {var} is not set",
                             f"export {var}, or give a default: ${{{var}:-value}}"))
            return ""
        return value
    if op in (":-", "-"):
        return expand(word) if missing else str(value)
    if op in (":+", "+"):
        return "" if missing else expand(word)
    if missing:  # ":?" or "?"
        what = "is not set" if value is None else "is empty"
        detail = expand(word) if word else ""
        problems.append((f"environment variable {var} {what}" + (f": {detail}" if detail else ""),
                         f"export {var}"))
        return ""
    return str(value)


def interpolate(value: Any, env: Mapping[str, str], path: KeyPath = ()
                ) -> tuple[Any, list[tuple[KeyPath, str, str]]]:
    """Substitute variables in every string value (never in keys) of parsed TOML."""
    problems: list[tuple[KeyPath, str, str]] = []

    def walk(item: Any, where: KeyPath) -> Any:
        if isinstance(item, str):
            text, found = _substitute(item, env)
            problems.extend((where, message, hint) for message, hint in found)
            return text
        if isinstance(item, dict):
            return {k: walk(v, where + (k,)) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, where + (i,)) for i, v in enumerate(item)]
        return item

    return walk(value, path), problems


# ------------------------------------------------------------------------- structuring
_ENTRY_TABLES = {("groups",), ("groups", "*", "members")}


def _is_entry(path: KeyPath) -> bool:
    """Whether ``path`` names a group or a member table (an entry of a table of tables)."""
    parent = tuple("*" if i == 1 else s for i, s in enumerate(path[:-1]))
    return parent in _ENTRY_TABLES


class _SetAside:
    """Sets aside the values behind structuring issues, remembering how lists shrank.

    A missing key gets its example value; a bad group or member becomes an empty table
    (so that ``depends_on`` still finds it); anything else is dropped. Dropping a list
    element shifts the ones after it, so :meth:`original` maps a path in the shrunk data
    back to the index the operator wrote.
    """

    def __init__(self) -> None:
        self.kept: dict[KeyPath, list[int]] = {}  # list path -> original index of each item

    def apply(self, data: dict[str, Any], issues: list[conv.Issue]) -> bool:
        """Set aside what ``issues`` name; False when nothing could be, to stop trying."""
        changed = False
        dropped: dict[KeyPath, set[int]] = {}
        for issue in sorted(issues, key=lambda i: len(i.path), reverse=True):
            if not issue.path:
                return False
            *parents, last = issue.path
            parent: Any = data
            try:
                for step in parents:
                    parent = parent[step]
                parent[last]
            except (KeyError, IndexError, TypeError):
                if issue.missing and isinstance(parent, dict) and issue.fill is not None:
                    parent[last] = copy.deepcopy(issue.fill)
                    changed = True
                continue  # otherwise already set aside with its parent
            if issue.missing:
                continue  # present after all: nothing to fill
            if _is_entry(issue.path) and not _is_table(parent[last]):
                parent[last] = {}
            elif isinstance(parent, list) and isinstance(last, int):
                dropped.setdefault(tuple(parents), set()).add(last)
            else:
                del parent[last]
            changed = True
        for lpath, indices in dropped.items():
            items: Any = data
            for step in lpath:
                items = items[step]
            original = self.kept.get(lpath, list(range(len(items))))
            self.kept[lpath] = [o for i, o in enumerate(original) if i not in indices]
            items[:] = [v for i, v in enumerate(items) if i not in indices]
        return changed

    def original(self, path: KeyPath) -> KeyPath:
        """``path`` in the data as written, before list elements were dropped."""
        for n in range(len(path) - 1, 0, -1):
            kept, step = self.kept.get(path[:n]), path[n]
            if kept is not None and isinstance(step, int) and step < len(kept):
                return path[:n] + (kept[step],) + path[n + 1:]
        return path


def _structure(data: dict[str, Any]) -> tuple[Optional[Stack], list[conv.Issue], _SetAside]:
    """Structure ``data``, setting aside what fails; the issues are those of the first try.

    Later tries only meet the consequences of setting values aside (a required key that
    had the wrong type is now missing), which are not news to the operator.
    """
    data = copy.deepcopy(data)
    aside = _SetAside()
    first: Optional[list[conv.Issue]] = None
    for _ in range(8):
        try:
            return conv.structure(data), first or [], aside
        except Exception as exc:  # cattrs raises exception groups; explain() re-raises bugs
            issues = list(conv.explain(exc))
        if first is None:
            first = issues
        if not issues or not aside.apply(data, issues):
            break
    return None, first or [], aside


# ------------------------------------------------------------------------------ loading
def _positions(value: Any, path: KeyPath = (), out: Optional[dict[KeyPath, int]] = None
               ) -> dict[KeyPath, int]:
    """Each key path's rank in document order, for sorting problems as they appear."""
    out = {} if out is None else out
    out[path] = len(out)
    if isinstance(value, dict):
        for k, v in value.items():
            _positions(v, path + (k,), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _positions(v, path + (i,), out)
    return out


def _ordered(found: list[_Found], docs: list[tuple[str, dict[str, Any]]]) -> list[Problem]:
    """Problems in file order, then in the order of the keys in that file; each once."""
    files = [f for f, _ in docs]
    ranks = {f: _positions(doc) for f, doc in docs}

    def key(item: tuple[int, _Found]) -> tuple[int, int, int]:
        index, f = item
        path, rank = f.path or (), ranks.get(f.file, {})
        position = next((rank[path[:n]] for n in range(len(path), -1, -1) if path[:n] in rank), 0)
        return (files.index(f.file) if f.file in files else -1), position, index

    problems: list[Problem] = []
    for _, f in sorted(enumerate(found), key=key):
        problem = f.problem()
        if problem not in problems:
            problems.append(problem)
    return problems


def _under(path: KeyPath, covered: set[KeyPath]) -> bool:
    return any(path[: len(c)] == c for c in covered)


def load(path: Union[str, Path] = ".", env: Optional[Mapping[str, str]] = None,
         names_only: bool = False) -> LoadedSpec:
    """Load and validate the stack at ``path``; raise :class:`SpecError` listing every problem.

    ``names_only``: only the names matter (``destroy`` acts on what the engine has), so a
    variable that is not set is a problem only in the [stack] table; values it would
    have fed are set aside, as are the problems they cause.
    """
    files = spec_files(path)
    docs: list[tuple[str, dict[str, Any]]] = []
    unreadable: list[_Found] = []
    for f in files:
        doc, problem = _read(f)
        if problem:
            unreadable.append(problem)
        elif doc is not None:
            docs.append((str(f), doc))
    if unreadable:
        raise SpecError(f.problem() for f in unreadable)
    stack, env_files = _validate(docs, os.environ if env is None else env, str(path), names_only)
    return LoadedSpec(stack=stack, files=tuple(str(f) for f in files), source=str(path),
                      env_files=env_files)


def validate_documents(docs: list[tuple[str, dict[str, Any]]], env: Mapping[str, str],
                       source: str = "", names_only: bool = False) -> Stack:
    """Parsed spec files ``(name, TOML document)`` -> a validated :class:`Stack`.

    Raises :class:`SpecError` with every problem found; never anything else on bad input.
    """
    return _validate(docs, env, source, names_only)[0]


def _validate(docs: list[tuple[str, dict[str, Any]]], env: Mapping[str, str], source: str,
              names_only: bool = False
              ) -> tuple[Stack, dict[tuple[str, str], tuple[EnvFile, ...]]]:
    """:func:`validate_documents`, and the members' env files read and digested."""
    if not docs:
        raise SpecError([Problem(source, "", "no spec files", "pass a spec file, or a "
                                 "directory of *.toml files")])
    merged, origins, found = _merge(docs, source or (docs[0][0] if docs else ""))
    covered: set[KeyPath] = set()  # paths whose problems are reported already
    if not any("stack" in d for _, d in docs):
        covered.add(("stack",))
    data, unset = interpolate(merged, env)
    for kpath, message, hint in unset:
        if not names_only or kpath[:1] == ("stack",):
            found.append(_Found(origins.file_for(kpath), kpath, message, hint))
        covered.add(kpath)

    def add(kpath: KeyPath, message: str, hint: str) -> None:
        if not _under(kpath, covered):
            found.append(_Found(origins.file_for(kpath), kpath, message, hint))

    stack, issues, aside = _structure(data)
    env_files: dict[tuple[str, str], tuple[EnvFile, ...]] = {}
    for issue in issues:
        add(issue.path, issue.message, issue.hint)
    covered.update(issue.path for issue in issues)

    if stack is not None:
        def locate(other: KeyPath, here: KeyPath) -> str:
            other, here = aside.original(other), aside.original(here)
            text, there = format_path(other), origins.file_for(other)
            return text if there == origins.file_for(here) else f"{text} in {there}"

        for kpath, message, hint in check(stack, locate):
            add(aside.original(kpath), message, hint)
        if not names_only:  # a destroy needs no env file's values
            env_files = _env_files(stack, data, origins, add)

    if found:
        raise SpecError(_ordered(found, docs))
    assert stack is not None  # no problem found means it structured
    return _resolve_binds(stack, origins), env_files


def _resolve_binds(stack: Stack, origins: _Origins) -> Stack:
    """Bind sources written relative ('./www', '../data') are relative to the file that
    declares the member, as in Compose: made absolute here, the engine needs them so."""
    groups = {}
    for gname, group in stack.groups.items():
        members = {}
        for mname, member in group.members.items():
            base = Path(origins.file_for(("groups", gname, "members", mname))).resolve().parent
            volumes = []
            for spec in member.volumes:
                source, sep, rest = spec.partition(":")
                if source in (".", "..") or source.startswith(("./", "../")):
                    spec = os.path.normpath(base / source) + sep + rest
                volumes.append(spec)
            members[mname] = (attrs.evolve(member, volumes=tuple(volumes))
                              if tuple(volumes) != member.volumes else member)
        groups[gname] = attrs.evolve(group, members=members)
    return attrs.evolve(stack, groups=groups)


def _env_files(stack: Stack, data: dict[str, Any], origins: _Origins, add: Any
               ) -> dict[tuple[str, str], tuple[EnvFile, ...]]:
    """Read every member's env files, relative to the spec file that declares the member
    (as Compose does); a file that is missing or malformed is a problem of that key."""
    out: dict[tuple[str, str], tuple[EnvFile, ...]] = {}
    for gname, group in stack.groups.items():
        for mname, member in group.members.items():
            if not member.env_file:
                continue
            mpath: KeyPath = ("groups", gname, "members", mname)
            base = Path(origins.file_for(mpath)).parent
            written = data.get("groups", {}).get(gname, {}).get("members", {}).get(mname, {})
            as_list = isinstance(written.get("env_file") if isinstance(written, dict) else None, list)
            files = []
            for i, path in enumerate(member.env_file):
                try:
                    files.append(envfile.load(path, base))
                except envfile.EnvFileError as exc:
                    add(mpath + (("env_file", i) if as_list else ("env_file",)), exc.message, exc.hint)
            out[(gname, mname)] = tuple(files)
    return out
