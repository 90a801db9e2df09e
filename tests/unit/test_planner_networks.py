"""Planner and applier decisions for networks, volumes and cross-group order: pure, on
hand-built observed state (no engine)."""

from __future__ import annotations

import attrs
import pytest

from stackfix import converged, evolve, load_spec
from stackctl.apply import Applier, steps_of
from stackctl.errors import ApplyError, PlanError
from stackctl.observed import Observed
from stackctl.plan import make_plan
from stackctl.plan.model import Action

SPEC = """
[stack]
name = "shop"

[networks.back]
internal = true

[volumes.data]

[groups.api]
networks = ["default", "back"]

[groups.api.members.srv]
image = "app:1"
volumes = ["data:/data"]

[groups.web]
depends_on = ["api"]

[groups.web.members.cli]
image = "app:1"
"""


def _plan(tmp_path, applied: str, spec: str, **kw):
    return make_plan(load_spec(tmp_path, spec), converged(load_spec(tmp_path, applied)), **kw)


def _actions(plan) -> dict[str, Action]:
    return {c.address: c.action for c in plan.actionable}


def test_resources_and_edges(tmp_path) -> None:
    plan = make_plan(load_spec(tmp_path, SPEC), Observed(stack="shop"))
    assert _actions(plan) == {a: Action.CREATE for a in (
        "network.default", "network.back", "volume.data", "owner.api", "member.api.srv",
        "owner.web", "member.web.cli")}
    edges = set(plan.edges)
    assert {("network.default", "owner.api"), ("network.back", "owner.api"),
            ("network.default", "owner.web"), ("volume.data", "member.api.srv"),
            ("member.api.srv", "member.web.cli")} <= edges
    owner = plan.change_for("owner.api").resource
    assert owner.extra["networks"] == [["shop", ["api", "srv.api"], "network.default"],
                                       ["shop-back", ["api", "srv.api"], "network.back"]]
    assert plan.change_for("member.api.srv").resource.config["volumes"] == ["shop-data:/data"]


def test_joining_a_network_is_an_update_of_the_owner_only(tmp_path) -> None:
    joined = SPEC.replace('[groups.web]\n', '[groups.web]\nnetworks = ["default", "back"]\n')
    plan = _plan(tmp_path, SPEC, joined)
    assert _actions(plan) == {"owner.web": Action.UPDATE}
    change = plan.change_for("owner.web")
    assert "joins shop-back" in change.reason and "nothing restarts" in change.reason
    assert [(a.name, a.before, a.after) for a in change.attributes] == [
        ("networks", {"shop": ["cli.web", "web"]},
         {"shop": ["cli.web", "web"], "shop-back": ["cli.web", "web"]})]
    # And leaving: the same, the other way.
    assert _actions(_plan(tmp_path, joined, SPEC)) == {"owner.web": Action.UPDATE}


def test_a_new_member_re_joins_for_its_alias_a_removed_one_does_not(tmp_path) -> None:
    more = SPEC + '\n[groups.web.members.two]\nimage = "app:1"\n'
    plan = _plan(tmp_path, SPEC, more)
    assert _actions(plan) == {"owner.web": Action.UPDATE, "member.web.two": Action.CREATE}
    assert "re-joins shop (DNS aliases changed)" in plan.change_for("owner.web").reason
    assert _actions(_plan(tmp_path, more, SPEC)) == {"member.web.two": Action.DELETE}


def test_a_replaced_network_is_re_joined_in_place(tmp_path) -> None:
    plan = _plan(tmp_path, SPEC, SPEC.replace("internal = true", 'subnet = "10.40.0.0/24"'))
    assert _actions(plan) == {"network.back": Action.REPLACE, "owner.api": Action.UPDATE}
    assert "internal and subnet changed: forces replacement" in plan.change_for("network.back").reason
    assert "joins shop-back" in plan.change_for("owner.api").reason


def test_a_network_no_longer_declared_is_deleted_after_its_owners_leave(tmp_path) -> None:
    plan = _plan(tmp_path, SPEC, SPEC.replace('networks = ["default", "back"]', "")
                 .replace("[networks.back]\ninternal = true\n", ""))
    assert _actions(plan) == {"network.back": Action.DELETE, "owner.api": Action.UPDATE}
    assert ("network.back", "owner.api") in plan.edges


def test_volumes_are_never_deleted_or_replaced_by_a_plan(tmp_path) -> None:
    changed = SPEC.replace("[volumes.data]\n", '[volumes.data]\ndriver_opts = { type = "tmpfs" }\n')
    plan = _plan(tmp_path, SPEC, changed)
    assert plan.summary.empty
    note = plan.change_for("volume.data")
    assert note.action is Action.NOOP
    assert "driver_opts changed" in note.reason and "--replace volume.data" in note.reason
    # Undeclared, it stays too, and says why.
    gone = SPEC.replace("[volumes.data]\n", "").replace('volumes = ["data:/data"]', "")
    plan = _plan(tmp_path, SPEC, gone)
    assert _actions(plan) == {"member.api.srv": Action.REPLACE}
    assert plan.change_for("volume.data").action is Action.NOOP


def test_replace_volume_replaces_its_members(tmp_path) -> None:
    plan = _plan(tmp_path, SPEC, SPEC, replace=["volume.data"])
    assert _actions(plan) == {"volume.data": Action.REPLACE, "member.api.srv": Action.REPLACE}
    assert plan.change_for("member.api.srv").cause == "volume.data"


def test_destroy_keeps_volumes_unless_asked(tmp_path) -> None:
    want = load_spec(tmp_path, SPEC)
    plan = make_plan(want, converged(want), destroy=True)
    assert "volume.data" not in _actions(plan)
    assert "kept" in plan.change_for("volume.data").reason
    assert {"network.default", "network.back"} <= set(_actions(plan))
    plan = make_plan(want, converged(want), destroy=True, volumes=True)
    assert _actions(plan)["volume.data"] is Action.DELETE
    assert ("volume.data", "member.api.srv") in plan.edges  # the member goes first


def test_missing_external_network_or_volume_is_an_error(tmp_path) -> None:
    spec = SPEC.replace("[networks.back]\ninternal = true", '[networks.back]\nexternal = true\nname = "proxy"')
    spec = spec.replace("[volumes.data]", '[volumes.data]\nexternal = true\nname = "pg"')
    want = load_spec(tmp_path, spec)
    observed = converged(want)
    assert make_plan(want, observed).summary.empty
    bare = attrs.evolve(observed, network_names=frozenset({"shop"}), volume_names=frozenset())
    with pytest.raises(PlanError) as err:
        make_plan(want, bare)
    assert "network 'proxy' (external, joined by owner.api) does not exist" in str(err.value)
    assert "volume 'pg' (external, mounted by member.api.srv) does not exist" in str(err.value)
    assert make_plan(want, bare, destroy=True)  # destroy does not need them


def test_a_member_waits_for_the_groups_it_depends_on(tmp_path) -> None:
    plan = make_plan(load_spec(tmp_path, SPEC), Observed(stack="shop"))
    steps, edges = steps_of(plan)
    required = {(a, b) for a, b, req in edges if req}
    assert ("wait", "member.api.srv") in steps
    assert (("create", "member.api.srv"), ("wait", "member.api.srv")) in required
    assert (("wait", "member.api.srv"), ("create", "member.web.cli")) in required
    # Owners do not wait.
    assert not any(b == ("create", "owner.web") and a[0] == "wait" for a, b in required)


def test_an_unhealthy_dependency_skips_only_its_dependents(tmp_path) -> None:
    from test_apply_steps import FakeEngine

    want = load_spec(tmp_path, SPEC)
    obs = evolve(converged(want), "member.web.cli", status="exited", exit_code=1)
    plan = make_plan(want, obs)
    assert _actions(plan) == {"member.web.cli": Action.RESTART}
    engine = FakeEngine(obs)
    engine.unhealthy["member.api.srv"] = "running, unhealthy; last health check: boom"
    with pytest.raises(ApplyError) as err:
        Applier(engine, plan).run()
    assert err.value.skipped == ("member.web.cli",)
    (addr, cause), = err.value.failures
    assert addr == "member.api.srv" and "shop-api-srv is not ready" in cause and "boom" in cause
    assert ("wait", "member.api.srv") in engine.log and ("restart", "member.web.cli") not in engine.log


def test_applier_joins_and_leaves_networks(tmp_path) -> None:
    from test_apply_steps import FakeEngine

    joined = SPEC.replace('[groups.web]\n', '[groups.web]\nnetworks = ["back"]\n')
    obs = converged(load_spec(tmp_path, SPEC))
    plan = make_plan(load_spec(tmp_path, joined), obs)
    engine = FakeEngine(obs)
    Applier(engine, plan).run()
    assert sorted(engine.joins) == [("connect", "owner.web", "shop-back", ("cli.web", "web")),
                                    ("disconnect", "owner.web", "shop", ())]
