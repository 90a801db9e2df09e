"""``stackctl status``: a read-only view per group, built from the same plan as ``plan``.

Status does not decide anything itself: whether a member is stranded or a sysctl drifted
is what the planner says about it, so status and plan can never disagree.
"""

from __future__ import annotations

from typing import Any, Optional

from stackctl.observed import Observed, ObservedContainer
from stackctl.plan.model import Action, Plan
from stackctl.plan.planner import completed
from stackctl.resources import Resource, Role


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()


def _table(rows: list[list[str]], indent: str) -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + _row(r, widths) for r in rows]


def _state(obs: Optional[ObservedContainer], r: Resource) -> str:
    if obs is None:
        return "missing"
    if completed(r, obs):
        return "completed"  # ran to the end (exit 0) under a policy that keeps it stopped
    if obs.status == "exited":
        return f"exited({obs.exit_code})"
    if obs.status == "restarting":
        return f"restarting({obs.exit_code})"
    if obs.health:
        return f"{obs.status} ({obs.health})"
    return obs.status


def status_document(plan: Plan, observed: Observed, desired: list[Resource]) -> dict[str, Any]:
    """The status as plain data (``status --json``)."""
    by_addr = {c.address: c for c in observed.containers}
    changes = {c.address: c for c in plan.changes}
    groups: dict[str, Any] = {}
    shared: dict[str, list[dict[str, Any]]] = {"networks": [], "volumes": []}
    for r in desired:
        change = changes.get(r.address)
        if r.role in (Role.NETWORK, Role.VOLUME):
            shared[f"{r.role.value}s"].append({
                "address": r.address, "name": r.name,
                "action": change.action.value if change else "no-op",
                "reason": change.reason if change else ""})
            continue
        g = groups.setdefault(r.group, {"owner": None, "sysctls": [], "members": []})
        obs = by_addr.get(r.address)
        entry = {
            "address": r.address, "container": r.name, "state": _state(obs, r),
            "failing": obs is not None and obs.status in ("restarting", "dead"),
            "health": obs.health if obs else None,
            "id": obs.id[:12] if obs else None,
            "action": (change.action.value if change else "no-op"),
            "reason": change.reason if change else "",
        }
        if r.role is Role.OWNER:
            g["owner"] = {**entry, "ports": r.config["ports"]}
        elif r.role is Role.HELPER:
            live = observed.sysctls.get(r.group)
            for key, value in r.config["sysctls"].items():
                now = live.get(key) if live is not None else None
                g["sysctls"].append({"name": key, "declared": value, "live": now,
                                     "ok": now == value if live is not None else None})
        else:
            owner = by_addr.get(f"owner.{r.group}")
            shares = None
            if obs and owner and obs.running and owner.running:
                shares = (change is None or change.action is Action.NOOP)
            g["members"].append({**entry, "member": r.member, "shares_owner_namespace": shares})
    orphans = [{"address": c.address, "container": c.container_name, "reason": c.reason}
               for c in plan.changes if c.resource is None]
    s = plan.summary
    return {"stack": plan.stack, "live_sysctls_read": observed.refreshed, "groups": groups,
            **shared,
            "not_in_spec": orphans,
            "pending": {"add": s.add, "change": s.change, "destroy": s.destroy}}


def render_status(plan: Plan, observed: Observed, desired: list[Resource]) -> str:
    doc = status_document(plan, observed, desired)
    out = [f"Stack {doc['stack']!r}: {len(observed.containers)} container(s) on the engine", ""]
    for kind in ("networks", "volumes"):
        if doc[kind]:
            rows = [[e["address"], e["name"], _verdict_text(e)] for e in doc[kind]]
            out += [f"{kind}:", *_table(rows, "  "), ""]
    for gname, g in doc["groups"].items():
        owner = g["owner"]
        out.append(f"group {gname}")
        ports = ", ".join(owner["ports"]) or "none"
        rows = [["owner", owner["container"], owner["state"], f"ports: {ports}",
                 _verdict_text(owner)]]
        for m in g["members"]:
            where = {True: "in the owner's namespace", False: "", None: ""}[m["shares_owner_namespace"]]
            rows.append([f"member {m['member']}", m["container"], m["state"], where, _verdict_text(m)])
        out += _table(rows, "  ")
        if g["sysctls"]:
            srows = []
            for sc in g["sysctls"]:
                live = sc["live"] if sc["live"] is not None else ("(not read)" if not doc["live_sysctls_read"] else "(unknown)")
                verdict = {True: "ok", False: "DRIFT", None: ""}[sc["ok"]]
                srows.append([sc["name"], f"declared {sc['declared']}", f"live {live}", verdict])
            out.append("  sysctls:")
            out += _table(srows, "    ")
        out.append("")
    for o in doc["not_in_spec"]:
        out.append(f"not in the spec: {o['address']} ({o['container']}): {o['reason']}")
    p = doc["pending"]
    if p["add"] or p["change"] or p["destroy"]:
        out.append(f"Pending: {p['add']} to add, {p['change']} to change, {p['destroy']} to "
                   "destroy. Run `stackctl plan` for the details, `stackctl apply` to repair.")
    else:
        out.append("In sync: the engine matches the spec.")
    return "\n".join(out) + "\n"


def _verdict_text(entry: dict[str, Any]) -> str:
    if entry.get("failing"):
        return ("FAILING: the engine keeps restarting it; see `docker logs " + entry["container"]
                + "`" if entry["state"].startswith("restarting") else "FAILING")
    if entry["action"] == "no-op":
        return "ok"
    return f"NEEDS {entry['action'].upper()}: {entry['reason']}"
