"""Terraform-style human output: symbols, attribute diffs, a reason per change."""

from __future__ import annotations

import json
from typing import Any, Optional

from stackctl.plan.model import Action, AttributeChange, Change, Plan
from stackctl.render.sensitive import SENSITIVE_VALUE, mask, mask_config

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.RESTART: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
}
VERBS = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in-place",
    Action.RESTART: "will be restarted",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be destroyed",
}
_COLOURS = {"+": "32", "~": "33", "-": "31", "-/+": "33", "bold": "1", "dim": "2"}


class _Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, key: str) -> str:
        if not self.colour:
            return text
        return f"\x1b[{_COLOURS[key]}m{text}\x1b[0m"


def value(v: Any) -> str:
    """A value as it would be written in a spec (JSON is close enough to TOML here)."""
    if v is None:
        return "null"
    return json.dumps(v, sort_keys=True)


def _attr_lines(c: Change, style: _Style) -> list[str]:
    lines: list[str] = []
    if c.action is Action.CREATE:
        after = mask_config(c.after) or {}
        width = max((len(k) for k in after), default=0)
        lines += [f"      {style('+', '+')} {k.ljust(width)} = {value(after[k])}" for k in sorted(after)]
    elif c.action is Action.DELETE:
        before = mask_config(c.before) or {}
        width = max((len(k) for k in before), default=0)
        lines += [f"      {style('-', '-')} {k.ljust(width)} = {value(before[k])}" for k in sorted(before)]
    elif c.attributes:
        width = max(len(a.name) for a in c.attributes)
        lines += [_attr_change(a, width, style) for a in c.attributes]
        hidden = len(set(c.after or {}) - {a.name for a in c.attributes} - {"sysctls"})
        if hidden and c.action is Action.REPLACE:
            lines.append(style(f"        # ({hidden} unchanged attributes hidden)", "dim"))
    return lines


def _attr_change(a: AttributeChange, width: int, style: _Style) -> str:
    before, after = mask(a.name, a.before), mask(a.name, a.after)
    if a.before is None:
        line = f"      {style('+', '+')} {a.name.ljust(width)} = {value(after)}"
    elif a.after is None:
        line = f"      {style('-', '-')} {a.name.ljust(width)} = {value(before)}"
    elif before == after:  # a sensitive value changed: say so, show neither
        line = f"      {style('~', '~')} {a.name.ljust(width)} = {SENSITIVE_VALUE}"
    else:
        line = f"      {style('~', '~')} {a.name.ljust(width)} = {value(before)} -> {value(after)}"
    if a.forces_replacement:
        line += " " + style("# forces replacement", "-")
    return line


def render_change(c: Change, style: _Style) -> list[str]:
    symbol = SYMBOLS[c.action]
    lines = [style(f"  # {c.address} {VERBS[c.action]}", "bold")]
    if c.reason:
        lines.append(f"  # ({c.reason})")
    body = _attr_lines(c, style)
    indent = "" if symbol == "-/+" else "  "
    head = f"{indent}{style(symbol, symbol)} {c.address}"
    if body:
        lines += [head + " {", *body, "    }"]
    else:
        lines.append(head)
    return lines


TARGETED = ("Targeting is in effect (--target): only the targeted addresses and what they "
            "need were planned, so other changes may be pending; run plan without --target "
            "to see them all.")


def render_plan(plan: Plan, colour: bool = False, refreshed: Optional[bool] = True,
                targeted: bool = False) -> str:
    """The whole plan, ending in Terraform's summary line (or "No changes.").

    ``targeted``: the plan was restricted with --target, which is said first (as
    Terraform warns), so that "No changes" is not read as "the engine matches the spec".
    """
    style = _Style(colour)
    out: list[str] = [style("Warning:", "bold") + " " + TARGETED, ""] if targeted else []
    changes = plan.actionable
    # No-ops with something to say: volumes kept, or changed in the spec but left alone.
    notes = [f"  # {c.address}: {c.reason}" for c in plan.changes
             if c.action is Action.NOOP and c.reason]
    if notes:
        notes = ["Left as they are:", *notes, ""]
    if not changes:
        out.append(style("No changes.", "bold") + " " + (
            "The targeted addresses match the spec." if targeted
            else "Nothing of this stack is on the engine." if plan.destroy and not notes
            else "Nothing to remove." if plan.destroy else "The engine matches the spec."))
        if refreshed is False:
            out.append("(live sysctls were not read: --refresh=false)")
        if notes:
            out += ["", *notes[:-1]]
        return "\n".join(out) + "\n"
    used = sorted({c.action for c in changes}, key=list(SYMBOLS).index)
    out.append("Resource actions are indicated with the following symbols:")
    legend = {Action.CREATE: "create", Action.UPDATE: "update in-place",
              Action.RESTART: "restart (in-place)",
              Action.REPLACE: "destroy and then create replacement", Action.DELETE: "destroy"}
    seen = set()
    for a in used:
        sym = SYMBOLS[a]
        if (sym, legend[a]) in seen:
            continue
        seen.add((sym, legend[a]))
        out.append(f"  {style(sym, sym)} {legend[a]}")
    out.append("")
    if refreshed is False and not plan.destroy:
        out.append("(live sysctls were not read: --refresh=false)")
        out.append("")
    out.append(f"stackctl will perform the following actions on stack {plan.stack!r}:")
    out.append("")
    for c in changes:
        out += render_change(c, style)
        out.append("")
    out += notes
    s = plan.summary
    out.append(style("Plan:", "bold") + f" {s.add} to add, {s.change} to change, {s.destroy} to destroy.")
    return "\n".join(out) + "\n"
