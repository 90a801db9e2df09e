"""The one cattrs converter that turns parsed TOML into :mod:`stackctl.spec.model`.

It is strict where cattrs is lenient by default: a string is never split into a list of
characters, ``"80"`` is never silently an int, unknown keys are errors. Structuring errors
are turned into :class:`~stackctl.errors.Problem`-ready ``(path, message, hint)`` triples
by :func:`explain`, with a "did you mean" for misspelt keys.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterator, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_mapping_structure_fn

from stackctl.spec import model
from stackctl.spec.ports import PortBinding, PortSyntaxError, parse_port
from stackctl.spec.sysctls import normalize_value

Path = tuple[Union[str, int], ...]

TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", float: "a number"}


class SpecValueError(ValueError):
    """A value of the right type but wrong content, with a hint on how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return TYPE_NAMES.get(type(value), type(value).__name__)


def _strict(expected: type) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if type(value) is not expected:
            raise TypeError(f"expected {TYPE_NAMES[expected]}, got {_toml_type(value)}")
        return value

    return hook


def _env_value(value: Any, _: Any) -> str:
    """Environment values: strings, or numbers and booleans written bare in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"expected a string, got {_toml_type(value)}")


def _port(value: Any, _: Any) -> PortBinding:
    if not isinstance(value, str):
        raise TypeError(f"expected a port string such as '8080:80', got {_toml_type(value)}")
    try:
        return parse_port(value)
    except PortSyntaxError as exc:
        raise SpecValueError(str(exc), exc.hint) from None


def _sysctl_value(value: Any, _: Any) -> str:
    try:
        return normalize_value(value)
    except TypeError as exc:
        raise TypeError(str(exc)) from None


def _restart(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {_toml_type(value)}")
    if value not in model.RESTART_POLICIES:
        raise SpecValueError(
            f"unknown restart policy {value!r}",
            "use one of: " + ", ".join(model.RESTART_POLICIES),
        )
    return value


def _is_str_tuple(t: Any) -> bool:
    return get_origin(t) is tuple and get_args(t)[1:] == (...,)


def _is_dict(t: Any) -> bool:
    return get_origin(t) is dict


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for primitive in (str, int, bool, float):
        conv.register_structure_hook(primitive, _strict(primitive))
    conv.register_structure_hook(PortBinding, _port)
    conv.register_structure_hook_func(lambda t: t == model.Restart, _restart)

    def tuple_factory(t: Any) -> Any:
        inner = homogenous_tuple_structure_factory(t, conv)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"expected an array, got {_toml_type(value)}")
            return inner(value, t)

        return hook

    def dict_factory(t: Any) -> Any:
        key_type, value_type = get_args(t)
        inner = make_mapping_structure_fn(t, conv, key_type=key_type, val_type=value_type)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a table, got {_toml_type(value)}")
            return inner(value, t)

        return hook

    conv.register_structure_hook_factory(_is_str_tuple, tuple_factory)
    conv.register_structure_hook_factory(_is_dict, dict_factory)

    # Group.sysctls and Member.environment are dict[str, str] in the model, but their
    # values are normalized differently: give each attribute its own hook.
    def group_hook_factory(cl: type) -> Any:
        from cattrs.gen import make_dict_structure_fn, override

        overrides: dict[str, Any] = {}
        if cl is model.Group:
            overrides["sysctls"] = override(struct_hook=_mapping_of(_sysctl_value))
        if cl is model.Member:
            overrides["environment"] = override(struct_hook=_mapping_of(_env_value))
        return make_dict_structure_fn(
            cl, conv, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True,
            **overrides,
        )

    conv.register_structure_hook_factory(
        lambda t: t in (model.Group, model.Member), group_hook_factory
    )
    return conv


def _mapping_of(value_hook: Any) -> Any:
    """A hook for a table of string keys whose values go through ``value_hook``."""

    def hook(value: Any, _: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise TypeError(f"expected a table, got {_toml_type(value)}")
        out: dict[str, str] = {}
        errors: list[Exception] = []
        for key, item in value.items():
            try:
                out[key] = value_hook(item, None)
            except Exception as exc:  # collected with its key, re-raised as a group
                exc.__notes__ = [cattrs.errors.IterableValidationNote(f"key {key!r}", key, str)]
                errors.append(exc)
        if errors:
            raise IterableValidationError("invalid table values", errors, dict)
        return out

    return hook


converter = _make_converter()


def structure(data: dict[str, Any]) -> model.Stack:
    """Structure merged TOML data into a :class:`model.Stack` (raises cattrs errors)."""
    return converter.structure(data, model.Stack)


def _suggest(key: str, cl: type) -> str:
    fields = [a.name for a in attrs.fields(cl)]
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid keys here: " + ", ".join(fields)


def explain(exc: BaseException, path: Path = ()) -> Iterator[tuple[Path, str, str]]:
    """Walk a cattrs error tree and yield ``(path, message, hint)`` for each leaf."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            step = note.name if isinstance(exc, ClassValidationError) else note.index
            yield from explain(sub, path + (step,))
        for sub in without:
            yield from explain(sub, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            if exc.cl is model.Member and key in model.GROUP_ONLY_KEYS:
                yield (
                    path + (key,),
                    f"{key!r} belongs to the group, not to a member: members share the "
                    "owner's network namespace",
                    f"move it to the group table [groups.{path[1] if len(path) > 1 else '<group>'}]",
                )
            else:
                yield path + (key,), "unknown key", _suggest(key, exc.cl)
    elif isinstance(exc, KeyError):
        yield path, "required key is missing", "add it"
    elif isinstance(exc, SpecValueError):
        yield path, str(exc), exc.hint
    elif isinstance(exc, (TypeError, ValueError)):
        yield path, str(exc), ""
    else:
        raise exc
