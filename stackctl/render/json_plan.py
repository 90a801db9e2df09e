"""``plan --json``: one versioned JSON document, actions as in Terraform's JSON plan."""

from __future__ import annotations

import json
from typing import Any

from stackctl.plan.model import Plan
from stackctl.render.sensitive import mask, mask_config


def plan_document(plan: Plan) -> dict[str, Any]:
    s = plan.summary
    return {
        "format_version": plan.format_version,
        "stack": plan.stack,
        "destroy": plan.destroy,
        "changes": [
            {
                "address": c.address,
                "action": c.action.json,
                "reason": c.reason,
                "before": mask_config(c.before),
                "after": mask_config(c.after),
                "attributes": [
                    {"name": a.name, "before": mask(a.name, a.before), "after": mask(a.name, a.after),
                     "forces_replacement": a.forces_replacement}
                    for a in c.attributes
                ],
            }
            for c in plan.changes
        ],
        "edges": [list(e) for e in plan.edges],
        "summary": {"add": s.add, "change": s.change, "destroy": s.destroy},
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_document(plan), indent=2, sort_keys=False) + "\n"
