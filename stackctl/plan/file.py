"""Saved plans (``plan --out FILE``, ``apply FILE``): the plan as versioned JSON.

A saved plan carries everything the applier needs (the desired resources of each change)
and the fingerprint of the engine state it was computed against. ``apply FILE`` observes
again and refuses the plan if the fingerprint moved: it applies exactly what was
reviewed, or nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

import cattrs

from stackctl.errors import PlanError, StalePlanError
from stackctl.observed import Observed
from stackctl.plan.model import FORMAT_VERSION, Plan

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
        return plan, observe["sysctl_keys"], observe["helper_images"], bool(observe.get("refresh", True))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, cattrs.BaseValidationError) as exc:
        raise PlanError(f"{path}: cannot read saved plan: {exc} (make a new one with "
                        "`stackctl plan --out FILE`)") from None


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
    ours = ({c.id for c in observed.containers} | {n.id for n in observed.networks}
            | {v.name for v in observed.volumes})
    foreign = sorted({c.container_id for c in plan.changes if c.container_id} - ours)
    if foreign:
        raise PlanError(f"{path}: the plan names containers that are not part of stack "
                        f"{plan.stack!r} ({', '.join(f[:12] for f in foreign)}); nothing was "
                        "applied")
