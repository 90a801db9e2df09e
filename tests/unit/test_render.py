"""Renderers: Terraform-style human text, the JSON document of DESIGN.md section 5, DOT."""

from __future__ import annotations

import json
import re

import pytest

from stackfix import BASE_SPEC, converged, drop, evolve, live, load_spec
from stackctl.observed import Observed
from stackctl.plan import Action, make_plan
from stackctl.plan.model import Change, Plan
from stackctl.render.dot import render_dot
from stackctl.render.human import render_plan
from stackctl.render.json_plan import plan_document, render_json

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def edit(old: str, new: str, text: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.fixture
def mixed_plan(tmp_path) -> Plan:
    """One plan with every action: create, update, restart, replace (owner and member), delete."""
    spec = BASE_SPEC
    spec = edit('ports = ["5432:5432"]', 'ports = ["5433:5432"]', spec)      # owner.db -/+ , pg -/+
    spec = edit('"net.core.somaxconn" = 1024', '"net.core.somaxconn" = 2048', spec)  # helper ~
    spec += '\n[groups.cache]\n\n[groups.cache.members.redis]\nimage = "redis:7"\n'  # + owner, + redis
    obs = converged(load_spec(tmp_path, BASE_SPEC + '\n[groups.old]\n\n[groups.old.members.x]\nimage = "x:1"\n'))
    obs = evolve(obs, "member.edge.web", status="exited", exit_code=2)           # ~ restart
    obs = drop(obs, "member.edge.app")                                           # + create
    return make_plan(load_spec(tmp_path, spec), obs)


def test_mixed_plan_has_every_action(mixed_plan: Plan) -> None:
    got = {c.address: c.action for c in mixed_plan.actionable}
    assert got == {
        "owner.cache": Action.CREATE, "member.cache.redis": Action.CREATE,
        "owner.db": Action.REPLACE, "member.db.pg": Action.REPLACE,
        "helper.edge": Action.UPDATE, "member.edge.app": Action.CREATE,
        "member.edge.web": Action.RESTART,
        "owner.old": Action.DELETE, "member.old.x": Action.DELETE,
    }


# ------------------------------------------------------------------------------ human
def _head(text: str, address: str) -> str:
    """The resource line of ``address``: symbol, address, optional opening brace."""
    lines = [l for l in text.splitlines() if re.fullmatch(rf"\s*(\+|~|-/\+|-) {re.escape(address)}( \{{)?", l)]
    assert len(lines) == 1, (address, text)
    return lines[0]


def test_human_symbols(mixed_plan: Plan) -> None:
    text = render_plan(mixed_plan, colour=False)
    assert _head(text, "owner.cache").startswith("  + owner.cache")
    assert _head(text, "member.edge.app").startswith("  + member.edge.app")
    assert _head(text, "helper.edge").startswith("  ~ helper.edge")
    assert _head(text, "member.edge.web").startswith("  ~ member.edge.web")
    assert _head(text, "owner.db").startswith("-/+ owner.db")
    assert _head(text, "member.db.pg").startswith("-/+ member.db.pg")
    assert _head(text, "owner.old").startswith("  - owner.old")
    assert _head(text, "member.old.x").startswith("  - member.old.x")
    # The legend lists the symbols used.
    legend = text.split("\n\n")[0]
    for sym, words in [("+", "create"), ("~", "update in-place"), ("-/+", "destroy and then create replacement"),
                       ("-", "destroy")]:
        assert f"  {sym} {words}" in legend


def test_human_reason_per_change(mixed_plan: Plan) -> None:
    text = render_plan(mixed_plan, colour=False)
    for c in mixed_plan.actionable:
        assert c.reason
        assert f"# ({c.reason})" in text
    assert "# member.edge.web will be restarted" in text
    assert "# owner.db must be replaced" in text
    assert "# owner.old will be destroyed" in text
    assert "# helper.edge will be updated in-place" in text
    assert "# owner.cache will be created" in text


def test_human_forces_replacement_on_replaced_attribute(mixed_plan: Plan) -> None:
    text = render_plan(mixed_plan, colour=False)
    lines = [l for l in text.splitlines() if "# forces replacement" in l]
    assert lines, text
    [ports] = [l for l in lines if "ports" in l]
    assert '["5432:5432/tcp"] -> ["5433:5432/tcp"]' in ports
    assert ports.strip().startswith("~ ports")
    # The in-place sysctl change is never marked as forcing a replacement.
    [sysctl] = [l for l in text.splitlines() if 'sysctls["net.core.somaxconn"]' in l]
    assert '"1024" -> "2048"' in sysctl and "forces replacement" not in sysctl


def test_human_summary_line(mixed_plan: Plan) -> None:
    s = mixed_plan.summary
    # creates: owner.cache, redis, app (3) + replaces: owner.db, pg (2)
    assert (s.add, s.change, s.destroy) == (5, 2, 4)
    text = render_plan(mixed_plan, colour=False)
    assert text.rstrip("\n").splitlines()[-1] == "Plan: 5 to add, 2 to change, 4 to destroy."


def test_human_create_and_delete_list_attributes(mixed_plan: Plan) -> None:
    text = render_plan(mixed_plan, colour=False)
    block = text.split("+ member.cache.redis {")[1].split("    }")[0]
    assert re.search(r'\+ image\s+= "redis:7"', block)
    block = text.split("- member.old.x {")[1].split("    }")[0]
    assert re.search(r'- image\s+= "x:1"', block)


def test_human_no_changes(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    plan = make_plan(want, converged(want))
    text = render_plan(plan, colour=False)
    assert text.startswith("No changes.")
    assert "Plan:" not in text
    assert text.startswith("No changes.") and "No changes." in render_plan(plan, colour=True)
    destroy_empty = make_plan(want, Observed(stack="shop"), destroy=True)
    assert render_plan(destroy_empty, colour=False).startswith("No changes.")


def test_human_colour_switch(mixed_plan: Plan) -> None:
    plain = render_plan(mixed_plan, colour=False)
    assert "\x1b" not in plain
    coloured = render_plan(mixed_plan, colour=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == plain


def test_human_one_change_each_kind_of_summary(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    drifted = live(obs, "edge", {**obs.sysctls["edge"], "net.core.somaxconn": "4096"})
    text = render_plan(make_plan(want, drifted), colour=False)
    assert text.rstrip().endswith("Plan: 0 to add, 1 to change, 0 to destroy.")
    assert "-/+" not in text and "forces replacement" not in text


# ------------------------------------------------------------------------------- JSON
CONTRACT_CHANGE_KEYS = {"address", "action", "reason", "before", "after"}


def test_json_document_contract(mixed_plan: Plan) -> None:
    doc = json.loads(render_json(mixed_plan))
    assert doc["format_version"] == "1"
    assert doc["stack"] == "shop"
    assert isinstance(doc["changes"], list)
    assert doc["summary"] == {"add": 5, "change": 2, "destroy": 4}
    assert set(doc["summary"]) == {"add", "change", "destroy"}
    for entry in doc["changes"]:
        assert CONTRACT_CHANGE_KEYS <= set(entry)
        assert isinstance(entry["address"], str)
        assert isinstance(entry["action"], list) and all(isinstance(a, str) for a in entry["action"])
        assert isinstance(entry["reason"], str)
        assert entry["before"] is None or isinstance(entry["before"], dict)
        assert entry["after"] is None or isinstance(entry["after"], dict)
    # Every change of the plan, no-ops included, in plan order.
    assert [e["address"] for e in doc["changes"]] == [c.address for c in mixed_plan.changes]
    assert plan_document(mixed_plan) == doc


def test_json_action_lists(mixed_plan: Plan) -> None:
    doc = json.loads(render_json(mixed_plan))
    actions = {e["address"]: e["action"] for e in doc["changes"]}
    assert actions["owner.edge"] == ["no-op"]
    assert actions["owner.cache"] == ["create"]
    assert actions["helper.edge"] == ["update"]
    assert actions["owner.db"] == ["delete", "create"]
    assert actions["member.db.pg"] == ["delete", "create"]
    assert actions["owner.old"] == ["delete"]
    assert actions["member.edge.web"] == ["restart"]
    assert {tuple(a) for a in actions.values()} <= {
        ("no-op",), ("create",), ("update",), ("delete", "create"), ("delete",), ("restart",)}


def test_json_before_after(mixed_plan: Plan) -> None:
    doc = json.loads(render_json(mixed_plan))
    by = {e["address"]: e for e in doc["changes"]}
    assert by["owner.cache"]["before"] is None
    assert by["owner.cache"]["after"]["ports"] == []
    assert by["owner.old"]["after"] is None
    assert by["owner.old"]["before"]["image"] == "pause:3.10"
    assert by["owner.db"]["before"]["ports"] == ["5432:5432/tcp"]
    assert by["owner.db"]["after"]["ports"] == ["5433:5432/tcp"]
    assert by["helper.edge"]["before"] == {"sysctls": {"net.core.somaxconn": "1024",
                                                       "net.ipv4.ip_local_port_range": "1024 65000"}}
    assert by["helper.edge"]["after"]["sysctls"]["net.core.somaxconn"] == "2048"
    assert "ports changed" in by["owner.db"]["reason"]
    assert by["owner.edge"]["reason"] == ""


def test_json_empty_plan(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    doc = json.loads(render_json(make_plan(want, converged(want))))
    assert doc["summary"] == {"add": 0, "change": 0, "destroy": 0}
    assert all(e["action"] == ["no-op"] for e in doc["changes"])


def test_json_is_one_document_ending_in_newline(mixed_plan: Plan) -> None:
    text = render_json(mixed_plan)
    assert text.endswith("\n")
    json.loads(text)  # exactly one document: loads would fail on trailing data


# -------------------------------------------------------------------------------- DOT
EDGE = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*->\s*("(?:[^"\\]|\\.)*")\s*;\s*$')
NODE = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*\[.*\]\s*;\s*$')


def _parse_dot(text: str) -> tuple[str, set[str], set[tuple[str, str]]]:
    lines = text.strip().splitlines()
    m = re.fullmatch(r'digraph\s+("(?:[^"\\]|\\.)*")\s*\{', lines[0])
    assert m, lines[0]
    assert lines[-1] == "}"
    nodes: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for line in lines[1:-1]:
        if e := EDGE.match(line):
            edges.add((json.loads(e.group(1)), json.loads(e.group(2))))
        elif n := NODE.match(line):
            nodes.add(json.loads(n.group(1)))
        else:
            assert re.fullmatch(r"\s*(rankdir=\w+|node \[.*\]);", line), line
    return json.loads(m.group(1)), nodes, edges


def test_dot_is_a_digraph_with_the_edges(mixed_plan: Plan) -> None:
    name, nodes, edges = _parse_dot(render_dot(mixed_plan))
    assert name == "stackctl shop"
    assert nodes == {c.address for c in mixed_plan.changes}
    for e in [("owner.edge", "helper.edge"), ("helper.edge", "member.edge.web"),
              ("member.edge.app", "member.edge.web"), ("owner.db", "member.db.pg"),
              ("owner.old", "member.old.x"), ("owner.cache", "member.cache.redis")]:
        assert e in edges, e
    assert edges == {e for e in mixed_plan.edges if e[0] in nodes and e[1] in nodes}
    assert edges <= set(mixed_plan.graph().edges)


def test_dot_escapes_quotes() -> None:
    plan = Plan(stack='we"ird', changes=(Change(address='owner.a"b', action=Action.CREATE),
                                          Change(address="member.a.x", action=Action.CREATE)),
                edges=(('owner.a"b', "member.a.x"),), fingerprint="")
    name, nodes, edges = _parse_dot(render_dot(plan))
    assert name == 'stackctl we"ird'
    assert edges == {('owner.a"b', "member.a.x")}


def test_status_says_complete_and_failing(tmp_path) -> None:
    from stackctl.render.status import render_status, status_document

    want = load_spec(tmp_path, BASE_SPEC)
    obs = evolve(evolve(converged(want), "member.edge.app", status="exited", exit_code=0),
                 "member.edge.web", status="restarting", exit_code=3)
    plan = make_plan(want, obs)
    doc = status_document(plan, obs, want)
    members = {m["member"]: m for m in doc["groups"]["edge"]["members"]}
    assert members["app"]["state"] == "completed" and not members["app"]["failing"]
    assert members["web"]["state"] == "restarting(3)" and members["web"]["failing"]
    text = render_status(plan, obs, want)
    assert re.search(r"member app\s+shop-edge-app\s+completed\s+ok", text), text
    assert "FAILING: the engine keeps restarting it; see `docker logs shop-edge-web`" in text


def test_targeting_is_announced(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = drop(converged(want), "member.edge.web")
    plan = make_plan(want, obs, targets=["owner.db"])
    text = render_plan(plan, targeted=True)
    assert text.startswith("Warning: Targeting is in effect")
    assert "other changes may be pending" in text
    assert "No changes. The targeted addresses match the spec." in text
    assert "The engine matches the spec" not in text
