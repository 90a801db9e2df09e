"""Spec files on disk -> one validated :class:`~stackctl.spec.model.Stack`.

Loading runs in stages, each collecting every problem it finds before stopping, so an
operator fixes a spec in one round trip: read and parse the TOML files; merge them,
remembering which file each table came from; substitute ``${VAR}`` from the environment;
structure with the one converter; apply the cross-field rules. All problems are raised
together as one :class:`~stackctl.errors.SpecError`, each naming its file and key path.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Union

import attrs

from stackctl.errors import Problem, SpecError
from stackctl.spec import converter as conv
from stackctl.spec.model import Stack
from stackctl.spec.rules import check

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KeyPath = tuple[Union[str, int], ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")


def format_path(path: KeyPath) -> str:
    """Render a key path the way it would be written in TOML: ``groups.edge.ports[0]``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            key = step if _PLAIN_KEY.match(step) else f'"{step}"'
            out += f".{key}" if out else key
    return out


@attrs.frozen
class LoadedSpec:
    """A validated stack and the files it came from."""

    stack: Stack
    files: tuple[str, ...]
    source: str


def spec_files(path: Union[str, Path]) -> list[Path]:
    """The files that make up the stack at ``path`` (a file, or a directory's ``*.toml``)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.glob("*.toml") if f.is_file())
        if not files:
            raise SpecError([Problem(str(p), "", "no *.toml spec files in this directory",
                                     "pass a spec file or a directory holding one")])
        return files
    if p.is_file():
        return [p]
    raise SpecError([Problem(str(p), "", "no such file or directory",
                             "pass a spec file or a directory of *.toml files")])


class _Origins:
    """Which file defined which table, for naming the file in an error."""

    def __init__(self, default: str) -> None:
        self.default = default
        self.by_prefix: dict[KeyPath, str] = {}

    def set(self, path: KeyPath, file: str) -> None:
        self.by_prefix.setdefault(path, file)

    def file_for(self, path: KeyPath) -> str:
        for n in range(len(path), 0, -1):
            found = self.by_prefix.get(tuple(path[:n]))
            if found:
                return found
        return self.default


def _merge(docs: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], _Origins, list[Problem]]:
    """Merge parsed files into one document; a table defined twice is a problem."""
    problems: list[Problem] = []
    merged: dict[str, Any] = {}
    stack_files = [f for f, d in docs if "stack" in d]
    origins = _Origins(stack_files[0] if stack_files else docs[0][0])
    if not stack_files:
        names = ", ".join(f for f, _ in docs)
        problems.append(Problem(names, "stack", "no [stack] table found",
                                "add [stack] with name = \"...\" to one file"))
    for file, doc in docs:
        for key, value in doc.items():
            if key == "groups" and isinstance(value, dict) and isinstance(merged.get("groups", {}), dict):
                _merge_groups(merged.setdefault("groups", {}), value, file, origins, problems)
                origins.set(("groups",), file)
            elif key in merged:
                first = origins.file_for((key,))
                problems.append(Problem(file, key, f"[{key}] is also defined in {first}",
                                        "define it in exactly one file"))
            else:
                merged[key] = value
                origins.set((key,), file)
    return merged, origins, problems


def _merge_groups(into: dict[str, Any], groups: dict[str, Any], file: str,
                  origins: _Origins, problems: list[Problem]) -> None:
    for gname, gtable in groups.items():
        gpath: KeyPath = ("groups", gname)
        if not isinstance(gtable, dict) or not isinstance(into.get(gname, {}), dict):
            if gname in into:
                problems.append(Problem(file, format_path(gpath),
                                        f"also defined in {origins.file_for(gpath)}",
                                        "define each group in one file"))
            else:
                into[gname] = gtable
                origins.set(gpath, file)
            continue
        target = into.setdefault(gname, {})
        origins.set(gpath, file)
        for key, value in gtable.items():
            kpath = gpath + (key,)
            if key == "members" and isinstance(value, dict) and isinstance(target.get("members", {}), dict):
                members = target.setdefault("members", {})
                for mname, mtable in value.items():
                    mpath = kpath + (mname,)
                    if mname in members:
                        problems.append(Problem(
                            file, format_path(mpath),
                            f"member defined twice: also in {origins.file_for(mpath)}",
                            "define each member in one file"))
                    else:
                        members[mname] = mtable
                        origins.by_prefix[mpath] = file
            elif key in target:
                problems.append(Problem(
                    file, format_path(kpath),
                    f"defined twice: also in {origins.file_for(kpath)}",
                    "define each group setting in one file"))
            else:
                target[key] = value
                origins.by_prefix[kpath] = file


def _interpolate(value: Any, path: KeyPath, env: Mapping[str, str],
                 unset: list[tuple[KeyPath, str]]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in string values; ``$$`` is a literal ``$``."""
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in env and (env[name] != "" or default is None):
                return env[name]
            if default is not None:
                return default
            unset.append((path, name))
            return ""
        return _VAR.sub(repl, value) if "$" in value else value
    if isinstance(value, dict):
        return {k: _interpolate(v, path + (k,), env, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path + (i,), env, unset) for i, v in enumerate(value)]
    return value


def load(path: Union[str, Path] = ".", env: Mapping[str, str] | None = None) -> LoadedSpec:
    """Load and validate the stack at ``path``; raise :class:`SpecError` listing every problem."""
    env = os.environ if env is None else env
    files = spec_files(path)
    docs: list[tuple[str, dict[str, Any]]] = []
    problems: list[Problem] = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                docs.append((str(f), tomllib.load(fh)))
        except tomllib.TOMLDecodeError as exc:
            problems.append(Problem(str(f), "", f"TOML syntax error: {exc}",
                                    "fix the TOML syntax at that line and column"))
        except OSError as exc:
            problems.append(Problem(str(f), "", f"cannot read file: {exc.strerror}"))
    if problems:
        raise SpecError(problems)

    merged, origins, problems = _merge(docs)
    unset: list[tuple[KeyPath, str]] = []
    merged = _interpolate(merged, (), env, unset)
    for kpath, name in unset:
        problems.append(Problem(origins.file_for(kpath), format_path(kpath),
                                f"environment variable {name} is not set",
                                f"export {name}, or give a default: ${{{name}:-value}}"))
    if problems:
        raise SpecError(problems)

    try:
        stack = conv.structure(merged)
    except Exception as exc:  # cattrs raises exception groups; explain() re-raises bugs
        raise SpecError(
            Problem(origins.file_for(p), format_path(p), msg, hint)
            for p, msg, hint in conv.explain(exc)
        ) from None

    found = [Problem(origins.file_for(p), format_path(p), msg, hint)
             for p, msg, hint in check(stack)]
    if found:
        raise SpecError(found)
    return LoadedSpec(stack=stack, files=tuple(str(f) for f in files), source=str(path))
