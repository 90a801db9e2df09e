"""A JSON Schema (draft 2020-12) of the spec format, for editors that check TOML.

It is derived from the attrs models (their fields, type hints and metadata), so a key
added to the model shows up here without anyone remembering to. What the types cannot
say (name patterns, which sysctls a group may set, what an environment value may be) is
taken from the same constants the validator uses. The schema checks one file on its
own: it cannot see a stack split over several files, so ``[stack]`` is not required by
it, and cross-field rules (a host port bound twice, ``depends_on`` cycles) are left to
``stackctl validate``. Strings holding ``${VAR}`` pass the patterns, since their value
is known only when the spec is loaded.
"""

from __future__ import annotations

import typing
from typing import Any, Literal, Union, get_args, get_origin

import attrs

from stackctl.spec import model
from stackctl.spec.ports import PORT_PATTERN, PortBinding
from stackctl.spec.rules import NAME_RE
from stackctl.spec.sysctls import ALLOWED, SCHEMA_NAME_PATTERN

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_VARIABLE = {"type": "string", "pattern": r"\$\{"}
_NAME = {"type": "string", "pattern": f"^{NAME_RE.pattern}$"}
_CAPABILITY = "^(?:[Cc][Aa][Pp]_)?[A-Za-z_]+$"

# What the model's types do not say, per (class, field): merged into the derived schema.
OVERRIDES: dict[tuple[type, str], dict[str, Any]] = {
    (model.StackInfo, "name"): {"anyOf": [_NAME, _VARIABLE]},
    (model.Stack, "groups"): {"propertyNames": _NAME},
    (model.Group, "members"): {"propertyNames": _NAME},
    # "default" is the stack's own network: never declared.
    (model.Stack, "networks"): {"propertyNames": {**_NAME, "not": {"const": model.DEFAULT_NETWORK}}},
    (model.Stack, "volumes"): {"propertyNames": _NAME},
    (model.Network, "subnet"): {"description": "an IPv4 or IPv6 network in CIDR notation, "
                                "written with its first address, e.g. 10.40.0.0/24",
                                "pattern": r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$"},
    (model.Group, "sysctls"): {
        "propertyNames": {"pattern": SCHEMA_NAME_PATTERN,
                          "description": f"a namespaced sysctl: {ALLOWED}"},
        "additionalProperties": {"anyOf": [{"type": "integer"},
                                           {"type": "string", "minLength": 1}]},
    },
    (model.Member, "env_file"): {"anyOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    (model.Member, "mem_limit"): {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    (model.Group, "shm_size"): {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    (model.Member, "ulimits"): {"additionalProperties": {"anyOf": [
        {"type": "integer"}, {"$ref": "#/$defs/Ulimit"}]}},
    (model.Healthcheck, "test"): {"anyOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    (model.Member, "working_dir"): {"anyOf": [{"type": "string", "pattern": "^/"}, _VARIABLE]},
    (model.Member, "tmpfs"): {"items": {"anyOf": [{"type": "string", "pattern": "^/"}, _VARIABLE]}},
    (model.Member, "devices"): {"items": {"anyOf": [{"type": "string", "pattern": "^/"}, _VARIABLE]}},
    (model.Member, "cap_add"): {"items": {"type": "string", "pattern": _CAPABILITY}},
    (model.Member, "cap_drop"): {"items": {"type": "string", "pattern": _CAPABILITY}},
    (model.Member, "cpus"): {"exclusiveMinimum": 0},
    (model.Member, "labels"): {"propertyNames": {"not": {"pattern": "^[sS][tT][aA][cC][kK][cC][tT][lL]\\."}}},
    (model.Member, "security_opt"): {"items": {"type": "string",
                                               "not": {"pattern": "^systempaths[=:]"}}},
    (model.Member, "environment"): {
        "propertyNames": {"minLength": 1, "pattern": "^[^=]*$"},
        "additionalProperties": {"type": ["string", "integer", "number", "boolean"]},
    },
}

# Tables that every spec file may leave out even though the stack needs them.
NOT_REQUIRED_PER_FILE = {(model.Stack, "stack")}


def json_schema() -> dict[str, Any]:
    """The whole schema, as a JSON-able dict."""
    defs: dict[str, Any] = {}
    root = _object(model.Stack, defs)
    return {
        "$schema": DRAFT,
        "title": "stackctl spec",
        **root,
        "description": "A stackctl spec file (TOML): a whole stack, or part of one whose "
                       "*.toml files share a directory. Check a whole stack with "
                       "`stackctl validate`.",
        "$defs": defs,
    }


def _object(cl: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cl)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cl):
        properties[field.name] = _field(cl, field, hints[field.name], defs)
        if field.default is attrs.NOTHING and (cl, field.name) not in NOT_REQUIRED_PER_FILE:
            required.append(field.name)
    for key, description in _refused(cl):
        properties[key] = {"not": {}, "description": description}
    schema: dict[str, Any] = {
        "type": "object",
        "description": (cl.__doc__ or "").strip().splitlines()[0],
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _refused(cl: type) -> list[tuple[str, str]]:
    """Keys an operator may try on ``cl`` that are refused, with the reason and the fix."""
    if cl is model.Member:
        return [(k, f"Belongs to the group, not to a member: {why} "
                    f"({fix.format(group='NAME')}).")
                for k, (why, fix) in model.GROUP_ONLY_KEYS.items()] + [
                (k, f"Not supported on a member: {why} ({fix}).")
                for k, (why, fix) in model.MEMBER_UNSUPPORTED_KEYS.items()]
    if cl is model.Group:
        return [(k, f"Not supported: {why} ({fix}).")
                for k, (why, fix) in model.GROUP_UNSUPPORTED_KEYS.items()]
    return []


def _field(cl: type, field: attrs.Attribute, hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = _type(hint, defs)
    schema.update(OVERRIDES.get((cl, field.name), {}))
    if "anyOf" in schema:
        schema.pop("type", None)
        schema.pop("pattern", None)
        schema.pop("enum", None)
    description = field.metadata.get("description")
    if description:
        schema["description"] = description
    default = _default(field)
    if default is not None:
        schema["default"] = default
    if "example" in field.metadata:
        schema["examples"] = [_jsonable(field.metadata["example"])]
    return schema


def _type(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = get_origin(hint), get_args(hint)
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is PortBinding:
        return {"anyOf": [{"type": "string", "pattern": PORT_PATTERN}, _VARIABLE]}
    if origin is Literal:
        return {"anyOf": [{"type": "string", "enum": list(args)}, _VARIABLE]}
    if origin is Union:  # Optional[X]: TOML has no null, so "may be left out"
        (inner,) = [a for a in args if a is not type(None)]
        return _type(inner, defs)
    if origin is tuple and args[1:] == (...,):
        return {"type": "array", "items": _type(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type(args[1], defs)}
    if attrs.has(hint):
        if hint.__name__ not in defs:
            defs[hint.__name__] = {}  # placeholder first: breaks recursion
            defs[hint.__name__] = _object(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    raise TypeError(f"no JSON Schema for {hint!r}: teach stackctl.spec.schema about it")


def _default(field: attrs.Attribute) -> Any:
    default = field.default
    if default is attrs.NOTHING or default is None:
        return None
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return _jsonable(default)


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return {k: _jsonable(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
