"""Compose files on disk -> one merged Compose model (plain dicts), read as Compose reads them.

Compose (compose-go) parses YAML 1.2 and PyYAML speaks YAML 1.1, where ``no`` is false,
``22:22`` is the integer 1342 and ``0777`` is octal: a port list or ``restart: no`` would
change meaning on the way in. :class:`_ComposeLoader` therefore resolves plain scalars by
the YAML 1.2 core schema, refuses a key defined twice in one mapping (as compose-go does),
and keeps anchors, aliases and ``<<`` merge keys. Several files merge in order with
Compose's rules (``override/merge.go`` and ``override/uncity.go`` in compose-go): mappings
merge key by key, later scalars win, sequences append, ``command``, ``entrypoint`` and
``healthcheck.test`` are replaced, key=value lists (``environment``, ``labels``,
``sysctls``, ``dns``, ...) merge by key, ``volumes`` by target, ``depends_on`` and
``networks`` as mappings, and the ``!reset`` and ``!override`` tags remove or replace what
an earlier file set. Variables (``${VAR}``) are not expanded: they stay text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import attrs
import yaml

from stackctl.errors import Problem

KeyPath = tuple[Union[str, int], ...]


class ComposeReadError(Exception):
    """A Compose file cannot be read; carries the problems, each naming the file."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# ----------------------------------------------------------------------- YAML 1.2
@attrs.frozen
class _Override:
    """A value tagged ``!override``: replaces what earlier files set, no merge."""

    value: Any


class _Reset:
    """A value tagged ``!reset``: removes what earlier files set."""


RESET = _Reset()

_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")


class _ComposeLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars, as compose-go reads them."""

    yaml_implicit_resolvers: dict[Any, Any] = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                        key_node, yaml.ScalarNode):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"mapping key {key_node.value!r} is defined twice "
                        f"(first at line {seen[key].line + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """Integers as Go's strconv.ParseInt(text, 0, 64) reads them, which compose-go's YAML
    library uses: ``0o17`` and ``017`` are octal, ``0x1F`` hex."""
    text = str(loader.construct_scalar(node))
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    if len(digits) > 1 and digits.startswith("0") and set(digits) <= set("01234567"):
        return sign * int(digits, 8)
    return sign * int(digits)


for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", re.compile(r"true|True|TRUE|false|False|FALSE"), "tTfF"),
    ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
    ("tag:yaml.org,2002:float", _FLOAT, "-+0123456789."),
    ("tag:yaml.org,2002:null", re.compile(r"~|null|Null|NULL|"), ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", re.compile(r"<<"), "<"),
):
    _ComposeLoader.add_implicit_resolver(_tag, re.compile(rf"^(?:{_pattern.pattern})$"),
                                         list(_first))
_ComposeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_ComposeLoader.add_constructor(
    "!reset", lambda loader, node: RESET)


def _construct_override(loader: yaml.SafeLoader, node: yaml.Node) -> _Override:
    if isinstance(node, yaml.SequenceNode):
        return _Override(loader.construct_sequence(node, deep=True))
    if isinstance(node, yaml.MappingNode):
        return _Override(loader.construct_mapping(node, deep=True))
    assert isinstance(node, yaml.ScalarNode)
    return _Override(loader.construct_scalar(node))


_ComposeLoader.add_constructor("!override", _construct_override)


def parse_documents(text: str, file: str) -> list[Any]:
    """Every YAML document in ``text`` (Compose reads each in turn); raises on bad YAML."""
    try:
        return [d for d in yaml.load_all(text, Loader=_ComposeLoader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"invalid YAML: {problem}" + (f" ({context})" if context and
                                                  "twice" not in problem else "")
        raise ComposeReadError([Problem(file, where, message,
                                        "fix the YAML syntax; `docker compose config` "
                                        "reports the same")]) from None


# -------------------------------------------------------------------------- merging
def _matches(path: KeyPath, pattern: str) -> bool:
    parts = pattern.split(".")
    return len(parts) == len(path) and all(p == "*" or p == str(k) for p, k in zip(parts, path))


def _go_text(value: Any) -> str:
    """A scalar as Go's %v prints it, for key=value sequences."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_sequence(value: Any) -> list[Any]:
    """A key=value mapping as Compose's sorted sequence form; a sequence stays as it is."""
    if isinstance(value, dict):
        seq: list[Any] = []
        for k, v in value.items():
            if v is None:
                seq.append(str(k))
            elif isinstance(v, list):
                seq += [f"{k}={_go_text(x)}" for x in v]
            else:
                seq.append(f"{k}={_go_text(v)}")
        return sorted(seq)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return [value]
    return []


def _to_mapping(value: Any, default: Optional[dict[str, Any]]) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {str(k): (dict(default) if default is not None else None) for k in value}
    return {}


_DEPENDS_DEFAULT = {"condition": "service_started", "required": True}
_TO_SEQUENCE = ("services.*.annotations", "services.*.dns", "services.*.dns_opt",
                "services.*.dns_search", "services.*.env_file", "services.*.environment",
                "services.*.labels", "services.*.sysctls", "services.*.tmpfs",
                "services.*.deploy.labels", "networks.*.labels", "volumes.*.labels",
                "services.*.build.args", "services.*.build.labels")
_REPLACE = ("services.*.command", "services.*.entrypoint", "services.*.healthcheck.test",
            "services.*.ulimits.*")


def _merge(base: Any, over: Any, path: KeyPath) -> Any:
    """Compose's merge of ``over`` (a later file) onto ``base``."""
    if any(_matches(path, p) for p in _REPLACE):
        return over
    if any(_matches(path, p) for p in _TO_SEQUENCE):
        return to_sequence(base) + to_sequence(over)
    if _matches(path, "services.*.extra_hosts"):
        left = to_sequence(base)
        return left + [h for h in to_sequence(over) if h not in left]
    if _matches(path, "services.*.depends_on"):
        return _merge_mappings(_to_mapping(base, _DEPENDS_DEFAULT),
                               _to_mapping(over, _DEPENDS_DEFAULT), path)
    if _matches(path, "services.*.networks"):
        return _merge_mappings(_to_mapping(base, None), _to_mapping(over, None), path)
    if _matches(path, "services.*.build"):
        def build(v: Any) -> dict[str, Any]:
            return {"context": v} if isinstance(v, str) else dict(v or {})
        return _merge_mappings(build(base), build(over), path)
    if _matches(path, "services.*.logging") and isinstance(base, dict) and isinstance(over, dict):
        if "driver" in base and "driver" in over and base["driver"] != over["driver"]:
            return over
        return _merge_mappings(base, over, path)
    if over is None:
        return base
    if isinstance(base, dict) and isinstance(over, dict):
        return _merge_mappings(base, over, path)
    if isinstance(base, list) and isinstance(over, list):
        return base + over
    return over


def _merge_mappings(base: dict[str, Any], over: dict[str, Any], path: KeyPath) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value, path + (key,)) if key in out else value
    return out


# ------------------------------------------------------------------------ unicity
def _kv_key(entry: Any) -> str:
    return str(entry).split("=", 1)[0]


def volume_target(entry: Any) -> str:
    """The container path of a service volume, short or long syntax (its unique key)."""
    if isinstance(entry, dict):
        return str(entry.get("target", ""))
    parts = str(entry).split(":")
    if len(parts) >= 2 and len(parts[0]) == 1 and parts[0].isalpha() and parts[1].startswith(
            ("\\", "/")):  # a Windows drive letter: C:\data:/data
        parts = [parts[0] + ":" + parts[1], *parts[2:]]
    return parts[1] if len(parts) >= 2 else parts[0]


def _device_target(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("target", ""))
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _env_file_key(entry: Any) -> str:
    return str(entry.get("path", "")) if isinstance(entry, dict) else str(entry)


_UNIQUE: dict[str, Callable[[Any], str]] = {
    **{f"services.*.{k}": _kv_key for k in (
        "annotations", "cap_add", "cap_drop", "dns", "dns_opt", "dns_search", "environment",
        "labels", "links", "profiles", "sysctls", "tmpfs", "expose")},
    "services.*.networks.*.aliases": _kv_key,
    "networks.*.labels": _kv_key,
    "services.*.volumes": volume_target,
    "services.*.devices": _device_target,
    "services.*.env_file": _env_file_key,
}


def _unique(value: Any, path: KeyPath) -> Any:
    """Compose's EnforceUnicity: a later entry with the same key replaces the earlier one."""
    if isinstance(value, dict):
        return {k: _unique(v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        for pattern, key_of in _UNIQUE.items():
            if _matches(path, pattern):
                out: list[Any] = []
                where: dict[str, int] = {}
                for entry in value:
                    key = key_of(entry)
                    if key in where:
                        out[where[key]] = entry
                    else:
                        where[key] = len(out)
                        out.append(entry)
                return out
    return value


# ------------------------------------------------------------------ reset, override
def _resets(doc: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, bool]]:
    """Paths tagged ``!reset`` (True) or ``!override`` (False) in one parsed file."""
    if isinstance(doc, dict):
        items: Any = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return
    for key, value in items:
        if value is RESET:
            yield path + (key,), True
        elif isinstance(value, _Override):
            yield path + (key,), False
            yield from _resets(value.value, path + (key,))
        else:
            yield from _resets(value, path + (key,))


def _strip(doc: Any) -> Any:
    """The document with ``!reset`` values removed and ``!override`` values unwrapped."""
    if isinstance(doc, _Override):
        return _strip(doc.value)
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if v is not RESET}
    if isinstance(doc, list):
        return [_strip(v) for v in doc if v is not RESET]
    return doc


def _delete(data: Any, path: KeyPath) -> None:
    for step in path[:-1]:
        if isinstance(data, dict) and step in data:
            data = data[step]
        else:
            return
    if isinstance(data, dict):
        data.pop(path[-1], None)


# ---------------------------------------------------------------------------- files
@attrs.frozen
class ComposeProject:
    """The merged model and where it came from."""

    model: dict[str, Any]
    files: tuple[str, ...]
    project_dir: Path
    # (service, key) -> the last file that set it, for naming the file in a message
    origins: dict[tuple[str, str], str]
    top_origins: dict[str, str]

    def file_of(self, service: Optional[str], key: str = "") -> str:
        if service is None:
            return self.top_origins.get(key, self.files[0])
        return self.origins.get((service, key)) or self.origins.get((service, ""),
                                                                    self.files[0])


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def read_project(files: list[str]) -> ComposeProject:
    """Read and merge Compose files in order; raise :class:`ComposeReadError` on bad input."""
    problems: list[Problem] = []
    merged: dict[str, Any] = {}
    origins: dict[tuple[str, str], str] = {}
    top_origins: dict[str, str] = {}
    for file in files:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(Problem(file, "", f"cannot read the file: {exc.strerror}",
                                    "check that it exists and that you may read it"))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(file, "", "not UTF-8 text", "save the file as UTF-8"))
            continue
        try:
            docs = parse_documents(text, file)
        except ComposeReadError as exc:
            problems += exc.problems
            continue
        for raw in docs:
            if not isinstance(raw, dict):
                problems.append(Problem(file, "", "the top level is not a mapping",
                                        "a Compose file is a mapping with a services key"))
                continue
            for path, _ in _resets(raw):
                _delete(merged, path)
            doc = _copy(_strip(raw))
            for key, value in doc.items():
                top_origins[key] = file
                if key == "services" and isinstance(value, dict):
                    for sname, service in value.items():
                        origins.setdefault((sname, ""), file)
                        for skey in service if isinstance(service, dict) else ():
                            origins[(sname, skey)] = file
            merged = _unique(_merge_mappings(merged, doc, ()), ())
    if problems:
        raise ComposeReadError(problems)
    return ComposeProject(model=merged, files=tuple(files),
                          project_dir=Path(files[0]).resolve().parent,
                          origins=origins, top_origins=top_origins)
