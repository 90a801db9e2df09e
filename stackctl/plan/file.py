"""Saved plans (``plan --out FILE``, ``apply FILE``): the plan as versioned JSON.

A saved plan carries everything the applier needs (the desired resources of each change)
and the fingerprint of the engine state it was computed against. ``apply FILE`` observes
again and refuses the plan if the fingerprint moved: it applies exactly what was
reviewed, or nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Union

import cattrs

from stackctl.errors import PlanError, StalePlanError
from stackctl.observed import Observed
from stackctl.plan.model import FORMAT_VERSION, Plan
from stackctl.plan.revalidate import first_problems, plan_problems

KIND = "stackctl-plan"
_conv = cattrs.Converter()


def dumps(plan: Plan, sysctl_keys: dict[str, list[str]], helper_images: dict[str, str],
          refresh: bool = True) -> str:
    doc: dict[str, Any] = {
        "kind": KIND,
        "plan": _conv.unstructure(plan),
        # What observe() must read again to check the fingerprint. Saved plans are always
        # made and checked with every container inspected (see Observed.fingerprint).
        "observe": {"sysctl_keys": sysctl_keys, "helper_images": helper_images,
                    "refresh": refresh},
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def save(path: Union[str, Path], text: str) -> None:
    """Write a plan file readable by its owner only (mode 0600): it holds the stack's
    environment values, which may be secrets. A clear error for a missing directory or
    a path that is a directory."""
    p = Path(path)
    if p.is_dir():
        raise PlanError(f"{path}: is a directory; name a file to save the plan in, "
                        f"e.g. {p / 'stack.plan'}")
    if not p.parent.is_dir():
        raise PlanError(f"{path}: the directory {str(p.parent)!r} does not exist; create it "
                        "or save the plan elsewhere")
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise PlanError(f"{path}: cannot save the plan: {exc.strerror}") from None


def is_plan_file(path: Union[str, Path]) -> bool:
    p = Path(path)
    if not p.is_file() or p.suffix == ".toml":
        return False
    with open(p, "rb") as fh:
        head = fh.read(64)
    return head.lstrip().startswith(b"{")


def load(path: Union[str, Path]) -> tuple[Plan, dict[str, list[str]], dict[str, str], bool]:
    """The plan, and what to observe again: sysctl keys, helper images, refresh."""
    try:
        doc = json.loads(Path(path).read_text())
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise ValueError("not a stackctl plan file")
        if not isinstance(doc.get("plan"), dict) or not isinstance(doc.get("observe"), dict):
            raise ValueError("the file is not a whole stackctl plan")
        version = doc["plan"].get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"plan format {version!r}; this stackctl reads {FORMAT_VERSION!r}")
        plan = _conv.structure(doc["plan"], Plan)
        observe = doc["observe"]
        keys, images = observe.get("sysctl_keys"), observe.get("helper_images")
        if not (isinstance(keys, dict) and all(
                isinstance(v, list) and all(isinstance(k, str) for k in v) for v in keys.values())):
            raise ValueError("observe.sysctl_keys must map each group to a list of names")
        if not (isinstance(images, dict) and all(isinstance(v, str) for v in images.values())):
            raise ValueError("observe.helper_images must map each group to an image")
        refresh = observe.get("refresh", True)
        if not isinstance(refresh, bool):
            raise ValueError("observe.refresh must be true or false")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, cattrs.BaseValidationError) as exc:
        raise PlanError(f"{path}: cannot read saved plan: {exc} (make a new one with "
                        "`stackctl plan --out FILE`)") from None
    problems = first_problems(plan_problems(plan, keys, images))
    if problems:
        raise PlanError(f"{path}: the saved plan holds what no valid spec gives, so nothing "
                        f"was applied (make a new plan):\n{problems}")
    return plan, keys, images, refresh


def check_current(path: Union[str, Path], plan: Plan, observed: Observed) -> None:
    """Refuse a saved plan unless the engine is exactly as it was when the plan was made.

    Also refuse a plan naming a container this stack does not have: the fingerprint covers
    the observed state, and this covers the plan's own references, so an edited plan file
    cannot point stackctl at a container without this stack's label.
    """
    if observed.fingerprint() != plan.fingerprint:
        raise StalePlanError(
            f"{path}: the saved plan is stale: stack {plan.stack!r} changed on the engine "
            "after the plan was made; nothing was applied (make a new plan)")
    if observed.stack != plan.stack:
        raise PlanError(f"{path}: the plan is for stack {plan.stack!r}, not {observed.stack!r}")
    # Each kind against its own observed objects: a container id, a network id, a
    # volume name (which is a volume's id). A volume name passed off as a container,
    # or a network's id as a container's, names nothing of this stack.
    ours: dict[str, dict[str, str]] = {
        "container": {c.id: c.address for c in observed.containers},
        "network": {n.id: n.address for n in observed.networks},
        "volume": {v.name: v.address for v in observed.volumes},
    }
    foreign = sorted({c.container_id for c in plan.changes if c.container_id
                      and c.container_id not in ours.get(c.kind, {})})
    if foreign:
        raise PlanError(f"{path}: the plan names containers, networks or volumes that are not "
                        f"part of stack {plan.stack!r} ({', '.join(f[:12] for f in foreign)}); "
                        "nothing was applied")
    # Each object acted on is the one at the change's address: an owner id is only ever
    # this group's owner (helpers and members join it by that id), a network or volume
    # is the one its stackctl label names.
    moved = [f"{c.address} -> {c.container_id[:12]} ({ours[c.kind][c.container_id]})"
             for c in plan.changes if c.container_id
             and ours[c.kind][c.container_id] != c.address.partition("#")[0]]
    if moved:
        raise PlanError(f"{path}: the plan points addresses at containers of other "
                        f"addresses ({', '.join(moved)}); nothing was applied")
