"""``stackctl graph``: the plan's dependency graph in Graphviz DOT."""

from __future__ import annotations

import json

from stackctl.plan.model import Action, Plan
from stackctl.render.human import SYMBOLS

_COLOURS = {Action.CREATE: "darkgreen", Action.UPDATE: "goldenrod", Action.RESTART: "goldenrod",
            Action.REPLACE: "darkorange", Action.DELETE: "red3", Action.NOOP: "gray40"}


def render_dot(plan: Plan) -> str:
    q = json.dumps  # DOT strings escape like JSON strings
    lines = [f"digraph {q('stackctl ' + plan.stack)} {{", "  rankdir=LR;",
             '  node [shape=box, fontname="monospace"];']
    for c in plan.changes:
        label = f"{SYMBOLS.get(c.action, '')} {c.address}".strip()
        lines.append(f"  {q(c.address)} [label={q(label)}, color={_COLOURS[c.action]}];")
    addresses = {c.address for c in plan.changes}
    for a, b in plan.edges:
        if a in addresses and b in addresses:
            lines.append(f"  {q(a)} -> {q(b)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
