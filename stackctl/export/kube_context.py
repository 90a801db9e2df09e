"""What the Kubernetes export carries while it maps a stack: names, warnings, Secrets.

Shared by the object mapping (:mod:`stackctl.export.kubernetes`) and the container
mapping (:mod:`stackctl.export.kube_containers`); also the small conversions both use
(quantities, ``$`` escaping).
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any, Optional

import attrs

from stackctl.export.names import Namer, is_qualified_name, label_value
from stackctl.spec.model import Stack
from stackctl.spec.units import UnitError, parse_duration

PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"

_SECOND = 10 ** 9


@attrs.frozen
class ExportWarning:
    """Something of the spec that does not carry over as it is: where, and what happens."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@attrs.frozen
class SecretToCreate:
    """A Secret the pods reference, made from one of the spec's env files."""

    name: str
    env_file: str  # as the operator reaches it from where they ran stackctl
    path: str  # the spec key it comes from

    def command(self, namespace: Optional[str]) -> str:
        ns = f" --namespace {shlex.quote(namespace)}" if namespace else ""
        return (f"kubectl create secret generic {self.name}{ns} "
                f"--from-env-file={shlex.quote(self.env_file)}")


def escape(text: str) -> str:
    """Keep Kubernetes from expanding ``$(VAR)`` in command, args and env values.

    The kubelet reads ``$(NAME)`` as a reference and ``$$`` as an escaped ``$``; Docker
    reads neither. Doubling each ``$`` followed by ``$`` or ``(`` makes the kubelet pass
    the text through exactly as Docker does, and leaves every other ``$`` (``$HOME`` for
    a shell) as written.
    """
    return re.sub(r"\$(?=[$(])", "$$", text)


def quantity_bytes(n: int) -> str:
    for unit, size in (("Gi", 1024 ** 3), ("Mi", 1024 ** 2), ("Ki", 1024)):
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def quantity_cpu(cpus: float) -> str:
    milli = max(1, round(cpus * 1000))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


@attrs.define
class Context:
    stack: Stack
    namespace: Optional[str]
    base_dir: str
    warnings: list[ExportWarning] = attrs.Factory(list)
    secrets: list[SecretToCreate] = attrs.Factory(list)
    group_names: Namer = attrs.Factory(lambda: Namer(letter_first=True))
    claim_names: Namer = attrs.Factory(Namer)
    secret_names: Namer = attrs.Factory(lambda: Namer(limit=253))
    policy_names: Namer = attrs.Factory(Namer)

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(ExportWarning(path, message))

    def labels(self, name: str, component: str) -> dict[str, str]:
        """The labels of every object; ``name`` is the object's Kubernetes name (groups'
        are unique, so a pod selector by name never picks another group's pods)."""
        return {
            PART_OF: label_value(self.stack.name),
            NAME: label_value(name),
            COMPONENT: component,
            MANAGED_BY: "stackctl",
        }

    def metadata(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if self.namespace:
            meta["namespace"] = self.namespace
        meta["labels"] = labels
        return meta

    def selector(self, group: str) -> dict[str, str]:
        return {PART_OF: label_value(self.stack.name), NAME: self.group_names.name(group)}

    def seconds(self, text: Optional[str], default: int, path: str) -> int:
        """A Docker duration as the whole seconds a probe takes (at least 1)."""
        if text is None:
            return default
        try:
            ns = parse_duration(text)
        except UnitError:
            self.warn(path, f"{text!r} is not a duration: Docker's default {default}s is used")
            return default
        if ns == 0:
            return default
        if ns % _SECOND:
            self.warn(path, f"{text!r} rounded up to {math.ceil(ns / _SECOND)}s: Kubernetes "
                            "probe timings are whole seconds")
        return max(1, math.ceil(ns / _SECOND))


def claim_name(ctx: Context, volume: str) -> str:
    declared = ctx.stack.volumes.get(volume)
    if declared is not None and declared.external:
        return ctx.claim_names.name(declared.name or volume)
    return ctx.claim_names.name(volume)


def annotations_of(ctx: Context, labels: dict[str, str], path: str) -> dict[str, str]:
    out = {}
    for key, value in sorted(labels.items()):
        if is_qualified_name(key):
            out[key] = value
        else:
            ctx.warn(f"{path}.{key}", "not a valid Kubernetes annotation key: left out")
    return out
