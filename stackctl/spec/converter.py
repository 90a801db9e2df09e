"""The one cattrs converter that turns parsed TOML into :mod:`stackctl.spec.model`.

It is strict where cattrs is lenient by default: a string is never split into a list of
characters, ``"80"`` is never silently an int, a table is checked to be a table before
its keys are read, unknown keys are errors. Structuring errors are turned into
:class:`Issue` (key path, what is wrong, how to fix it) by :func:`explain`, with a
"did you mean" for misspelt keys and an example taken from the model's field metadata.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Iterator, Optional, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn, override

from stackctl.spec import model
from stackctl.spec.tomltypes import toml_type
from stackctl.spec.ports import PortBinding, PortSyntaxError, parse_port
from stackctl.spec.sysctls import normalize_value, token_problem

KeyPath = tuple[Union[str, int], ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@attrs.frozen
class Issue:
    """One structuring problem: where, what, how to fix.

    ``missing`` marks an absent required key; ``fill`` is a valid value for it (the
    field's example), so the loader can go on checking the rest of the spec.
    """

    path: KeyPath
    message: str
    hint: str
    missing: bool = False
    fill: Any = None


class Invalid(ValueError):
    """A value of the right type but wrong content, with a hint on how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class WrongType(TypeError):
    """A value of the wrong TOML type; :func:`explain` adds an example as the hint."""

    def __init__(self, expected: str, value: Any, hint: str = "") -> None:
        super().__init__(f"expected {expected}, got {toml_type(value)}")
        self.hint = hint


def format_path(path: KeyPath) -> str:
    """Render a key path the way it would be written in TOML: ``groups.edge.ports[0]``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            key = step if _BARE_KEY.fullmatch(step) else json.dumps(step)
            out += f".{key}" if out else key
    return out


def toml_value(value: Any) -> str:
    """Render an example value as TOML, for hints like ``add image = "nginx:1.27"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{format_path((k,))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    return str(value)


# ----------------------------------------------------------------------------- hooks
_NAMES = {str: "a string", bool: "a boolean", int: "an integer", float: "a float"}


def _strict(expected: type) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if type(value) is not expected:
            raise WrongType(_NAMES[expected], value)
        return value

    return hook


def _env_value(value: Any, _: Any) -> str:
    """Environment values: strings, or numbers and booleans written bare in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise WrongType("a string", value)


def _port(value: Any, _: Any) -> PortBinding:
    if not isinstance(value, str):
        raise WrongType("a port string", value, 'quote it and name both ports, e.g. "8080:80"')
    try:
        return parse_port(value)
    except PortSyntaxError as exc:
        raise Invalid(str(exc), exc.hint) from None


def _sysctl_value(value: Any, _: Any) -> str:
    if isinstance(value, bool):
        raise WrongType("an integer or a string", value, "write 1 for true and 0 for false")
    if isinstance(value, float):
        raise WrongType("an integer or a string", value,
                        "write an integer, or the value exactly as the kernel takes it, as a string")
    if isinstance(value, list):
        raise WrongType("an integer or a string", value,
                        'write several values as one string, e.g. "1024 65000"')
    if isinstance(value, dict):
        raise WrongType("an integer or a string", value,
                        'unquoted dots make nested tables: quote the whole name, e.g. '
                        '"net.core.somaxconn" = 1024')
    try:
        text = normalize_value(value)
    except TypeError as exc:
        raise WrongType("an integer or a string", value) from exc
    if not text:
        raise Invalid("the value is empty", "give the value to set, e.g. 1024")
    for token in text.split():
        _check_decimal(token)
    return text


def _check_decimal(token: str) -> None:
    """Refuse a field the kernel would read back differently from how it is written
    (see :func:`stackctl.spec.sysctls.token_problem`)."""
    problem = token_problem(token)
    if problem:
        raise Invalid(*problem)


def _restart(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise WrongType("a string", value)
    if value not in model.RESTART_POLICIES:
        raise Invalid(f"unknown restart policy {value!r}",
                      "use one of: " + ", ".join(model.RESTART_POLICIES))
    return value


def _pull_policy(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise WrongType("a string", value)
    if value not in model.PULL_POLICIES:
        raise Invalid(f"unknown pull policy {value!r}",
                      "use one of: " + ", ".join(model.PULL_POLICIES))
    return value


def _mapping_of(value_hook: Any) -> Any:
    """A hook for a table of string keys whose values go through ``value_hook``."""

    def hook(value: Any, _: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise WrongType("a table", value)
        out: dict[str, str] = {}
        errors: list[Exception] = []
        for key, item in value.items():
            try:
                out[key] = value_hook(item, None)
            except (TypeError, ValueError) as exc:  # collected with its key
                exc.__notes__ = [IterableValidationNote(f"key {key!r}", key, str)]
                errors.append(exc)
        if errors:
            raise IterableValidationError("invalid table values", errors, dict)
        return out

    return hook


def _str_or_list(value: Any, _: Any) -> tuple[str, ...]:
    """One string or an array of strings (Compose's env_file)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        errors: list[Exception] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                exc = WrongType("a string", item)
                exc.__notes__ = [IterableValidationNote(f"index {i}", i, str)]
                errors.append(exc)
        if errors:
            raise IterableValidationError("invalid array items", errors, tuple)
        return tuple(value)
    raise WrongType("a string or an array of strings", value)


def _size(value: Any, _: Any) -> str:
    """A size as Compose writes it: "256m", or bytes as an integer (kept as text)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise WrongType("a size string or an integer", value, 'for example "256m"')
    return str(value)


def _cpus(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WrongType("a number", value, "for example cpus = 0.5")
    return float(value)


def _ulimit(value: Any, _: Any) -> model.Ulimit:
    """``nofile = 1024`` (soft = hard) or ``nofile = { soft = 1024, hard = 4096 }``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return model.Ulimit(soft=value, hard=value)
    if isinstance(value, dict):
        return converter.structure(value, model.Ulimit)
    raise WrongType("an integer or a table { soft, hard }", value,
                    "for example nofile = { soft = 1024, hard = 4096 }")


def _health_test(value: Any, _: Any) -> Optional[tuple[str, ...]]:
    """Compose's test: an array, or a string meaning ["CMD-SHELL", string]."""
    if isinstance(value, str):
        return ("CMD-SHELL", value)
    return _str_or_list(value, None)


# Per-attribute value hooks where the model's type (dict[str, str]) is not the whole story.
_VALUE_HOOKS: dict[tuple[type, str], Any] = {
    (model.Group, "sysctls"): _sysctl_value,
    (model.Member, "environment"): _env_value,
    (model.Member, "ulimits"): _ulimit,
}

# Whole-attribute hooks for keys that accept more than one TOML type, as Compose does.
_FIELD_HOOKS: dict[tuple[type, str], Any] = {
    (model.Member, "env_file"): _str_or_list,
    (model.Member, "mem_limit"): _size,
    (model.Member, "cpus"): _cpus,
    (model.Group, "shm_size"): _size,
    (model.Healthcheck, "test"): _health_test,
}


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for primitive in (str, int, bool, float):
        conv.register_structure_hook(primitive, _strict(primitive))
    conv.register_structure_hook(PortBinding, _port)
    conv.register_structure_hook_func(lambda t: t == model.Restart, _restart)
    conv.register_structure_hook_func(lambda t: t == model.PullPolicy, _pull_policy)

    def tuple_factory(t: Any) -> Any:
        inner = homogenous_tuple_structure_factory(t, conv)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise WrongType("an array", value)
            return inner(value, t)

        return hook

    def dict_factory(t: Any) -> Any:
        key_type, value_type = get_args(t)
        inner = make_mapping_structure_fn(t, conv, key_type=key_type, val_type=value_type)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, dict):
                raise WrongType("a table", value)
            return inner(value, t)

        return hook

    def class_factory(cl: type) -> Any:
        overrides: dict[str, Any] = {name: override(struct_hook=_mapping_of(h))
                     for (owner, name), h in _VALUE_HOOKS.items() if owner is cl}
        overrides.update({name: override(struct_hook=h)
                          for (owner, name), h in _FIELD_HOOKS.items() if owner is cl})
        inner: Any = make_dict_structure_fn(cl, conv, _cattrs_forbid_extra_keys=True,
                                       _cattrs_detailed_validation=True, **overrides)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, dict):
                raise WrongType("a table", value)
            return inner(value, cl)

        return hook

    conv.register_structure_hook_factory(
        lambda t: get_origin(t) is tuple and get_args(t)[1:] == (...,), tuple_factory)
    conv.register_structure_hook_factory(lambda t: get_origin(t) is dict, dict_factory)
    conv.register_structure_hook_factory(attrs.has, class_factory)
    return conv


converter = _make_converter()


def structure(data: dict[str, Any]) -> model.Stack:
    """Structure merged TOML data into a :class:`model.Stack` (raises cattrs errors)."""
    return converter.structure(data, model.Stack)


# ------------------------------------------------------------------------- explaining
def _suggest(key: str, cl: type) -> str:
    fields = [a.name for a in attrs.fields(cl)]
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid keys here: " + ", ".join(fields)


def _example_hint(field: Optional[attrs.Attribute], path: KeyPath, missing: bool) -> str:
    """``add image = "nginx:1.27"`` or ``for example: ...``, from the field's metadata."""
    if field is None or "example" not in field.metadata:
        return ""
    kind = _unwrap(field.type)
    is_entry = bool(path) and path[-1] != field.name
    if attrs.has(kind) or (is_entry and get_origin(kind) is dict and attrs.has(get_args(kind)[1])):
        return f"{'add' if missing else 'make it'} a table [{format_path(path)}]"
    example = f"{field.name} = {toml_value(field.metadata['example'])}"
    return f"add {example}" if missing else f"for example: {example}"


def _unwrap(t: Any) -> Any:
    """``Optional[X]`` -> ``X``; anything else unchanged."""
    args = [a for a in get_args(t) if a is not type(None)]
    return args[0] if get_origin(t) is Union and len(args) == 1 else t


def _group_of(path: KeyPath) -> str:
    return str(path[1]) if len(path) > 1 and path[0] == "groups" else "<group>"


def _extra_key(path: KeyPath, key: str, cl: type) -> Issue:
    where = path + (key,)
    if cl is model.Member and key in model.GROUP_ONLY_KEYS:
        why, fix = model.GROUP_ONLY_KEYS[key]
        return Issue(where, f"{key!r} belongs to the group, not to a member: {why}",
                     fix.format(group=format_path((_group_of(path),))))
    if cl is model.Group and key in model.GROUP_UNSUPPORTED_KEYS:
        why, fix = model.GROUP_UNSUPPORTED_KEYS[key]
        return Issue(where, f"{key!r} is not supported: {why}", fix)
    if cl is model.Member and key in model.MEMBER_UNSUPPORTED_KEYS:
        why, fix = model.MEMBER_UNSUPPORTED_KEYS[key]
        return Issue(where, f"{key!r} is not supported on a member: {why}", fix)
    return Issue(where, "unknown key", _suggest(key, cl))


def explain(exc: BaseException, path: KeyPath = (),
            field: Optional[attrs.Attribute] = None) -> Iterator[Issue]:
    """Walk a cattrs error tree and yield an :class:`Issue` for each leaf.

    ``field`` is the model attribute the current value belongs to, for example hints.
    Anything that is not a structuring error is a bug, and is re-raised.
    """
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            sub_field = attrs.fields_dict(exc.cl).get(note.name)
            yield from explain(sub, path + (note.name,), sub_field)
        for sub in without:
            yield from explain(sub, path, field)
    elif isinstance(exc, IterableValidationError):
        by_index, unplaced = exc.group_exceptions()
        for sub, inote in by_index:
            yield from explain(sub, path + (inote.index,), field)
        for sub in unplaced:
            yield from explain(sub, path, field)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield _extra_key(path, key, exc.cl)
    elif isinstance(exc, KeyError):
        yield Issue(path, "required key is missing",
                    _example_hint(field, path, True) or "add it", missing=True,
                    fill=field.metadata.get("example") if field is not None else None)
    elif isinstance(exc, (WrongType, Invalid)):
        yield Issue(path, str(exc), exc.hint or _example_hint(field, path, False))
    else:
        raise exc
