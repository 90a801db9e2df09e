"""The planner, table-driven: (spec, observed state) -> the changes, actions and reasons.

Each case names the spec that is planned, the spec that was applied before (the observed
state is what the engine would report for it, see ``stackfix.converged``), a perturbation
of that state (drift made by hand or by the engine), and the expected actionable changes
as (address, action, reason substring). Every address not listed must be a no-op.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs
import pytest

from stackfix import (BASE_SPEC, T0, add, container_id, converged, drop, evolve, find, live,
                      load_spec)
from stackctl.errors import PlanError
from stackctl.observed import Observed, ObservedContainer
from stackctl.plan import Action, make_plan
from stackctl.resources import Role

C, U, R, RS, D = Action.CREATE, Action.UPDATE, Action.REPLACE, Action.RESTART, Action.DELETE

ALL = ["owner.db", "member.db.pg", "owner.edge", "helper.edge", "member.edge.app", "member.edge.web"]
CONTAINERS = [a for a in ALL if not a.startswith("helper.")]


def edit(old: str, new: str, text: str = BASE_SPEC) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _identity(o: Observed) -> Observed:
    return o


@attrs.frozen
class Case:
    id: str
    expect: list[tuple[str, Action, str]]
    spec: str = BASE_SPEC
    applied: Optional[str] = BASE_SPEC  # None: nothing of the stack is on the engine
    perturb: Callable[[Observed], Observed] = _identity
    kwargs: dict[str, Any] = attrs.field(factory=dict)


NEW_NS = "net:[4026538888]"  # the namespace a restarted owner gets


def owner_restarted_later(o: Observed) -> Observed:
    latest = max(c.started_at for c in o.containers)
    return evolve(o, "owner.edge", started_at=latest + 5_000_000_000, netns=NEW_NS)


def owner_restarted_between_members(o: Observed) -> Observed:
    """The owner restarted after app started; web was restarted after that (re-joined)."""
    t = find(o, "member.edge.app").started_at + 1
    o = evolve(o, "owner.edge", started_at=t, netns=NEW_NS)
    return evolve(o, "member.edge.web", started_at=t + 1, netns=NEW_NS)


def remote(o: Observed) -> Observed:
    """What a remote engine gives: no namespaces, start times from inspect."""
    return attrs.evolve(o, containers=tuple(attrs.evolve(c, netns=None) for c in o.containers))


def from_listing(o: Observed) -> Observed:
    """What a local engine gives for members read from the listing: no start time, no
    restart policy, the namespace from /proc."""
    return attrs.evolve(o, containers=tuple(
        attrs.evolve(c, started_at=0, restart_policy=None) if c.role is Role.MEMBER else c
        for c in o.containers))


def owner_stopped(o: Observed) -> Observed:
    o = evolve(o, "owner.edge", status="exited", exit_code=137)
    return live(o, "edge", None)  # the engine reads no live sysctls of a stopped owner


def duplicate_owner(o: Observed) -> Observed:
    dup = attrs.evolve(find(o, "owner.edge"), id=container_id("shop-edge", "dup"), name="shop-edge-old")
    return add(o, dup)


def helper_leftover(o: Observed) -> Observed:
    h = ObservedContainer(id=container_id("shop-edge-sysctl"), name="shop-edge-sysctl",
                          role=Role.HELPER, group="edge", status="exited", started_at=T0)
    return add(o, h)


CASES = [
    Case("empty-engine-creates-everything", applied=None, expect=[
        ("network.default", C, "network does not exist"),
        ("owner.db", C, "owner does not exist"),
        ("member.db.pg", C, "member does not exist"),
        ("owner.edge", C, "owner does not exist"),
        ("helper.edge", C, "owner is new"),
        ("member.edge.app", C, "member does not exist"),
        ("member.edge.web", C, "member does not exist"),
    ]),
    Case("converged-is-all-no-op", expect=[]),
    Case("sysctl-changed-in-spec-updates-helper-only",
         spec=edit('"net.core.somaxconn" = 1024', '"net.core.somaxconn" = 2048'),
         expect=[("helper.edge", U, "live sysctls differ from the spec")]),
    Case("sysctl-added-in-spec-updates-helper-only",
         spec=edit('"net.core.somaxconn" = 1024,', '"net.core.somaxconn" = 1024, "net.ipv4.tcp_syncookies" = 0,'),
         expect=[("helper.edge", U, "live sysctls differ")]),
    Case("live-sysctl-changed-by-hand",
         perturb=lambda o: live(o, "edge", {**o.sysctls["edge"], "net.core.somaxconn": "4096"}),
         expect=[("helper.edge", U, "live sysctls differ from the spec")]),
    Case("live-sysctl-multi-value-changed-by-hand",
         perturb=lambda o: live(o, "edge", {**o.sysctls["edge"], "net.ipv4.ip_local_port_range": "32768 60999"}),
         expect=[("helper.edge", U, "live sysctls differ")]),
    Case("live-sysctls-not-read-is-no-op",
         perturb=lambda o: live(o, "edge", None), expect=[]),
    Case("ports-changed-replaces-owner-and-members",
         spec=edit('ports = ["8080:80",', 'ports = ["8081:80",'),
         expect=[
             ("owner.edge", R, "ports changed: forces replacement"),
             ("helper.edge", C, "owner is replaced"),
             ("member.edge.app", R, "owner is replaced"),
             ("member.edge.web", R, "owner is replaced"),
         ]),
    Case("port-added-replaces-owner-and-members",
         spec=edit('ports = ["5432:5432"]', 'ports = ["5432:5432", "5433:5433/udp"]'),
         expect=[
             ("owner.db", R, "ports changed: forces replacement"),
             ("member.db.pg", R, "owner is replaced"),
         ]),
    Case("owner-image-changed-replaces-owner-and-members",
         spec=edit('[groups.edge]\n', '[groups.edge]\nowner_image = "pause:3.11"\n'),
         expect=[
             ("owner.edge", R, "image changed: forces replacement"),
             ("helper.edge", C, "owner is replaced"),
             ("member.edge.app", R, "owner is replaced"),
             ("member.edge.web", R, "owner is replaced"),
         ]),
    Case("default-owner-image-changed-replaces-every-group",
         spec=edit('owner_image = "pause:3.10"', 'owner_image = "pause:3.11"'),
         expect=[
             ("owner.db", R, "image changed: forces replacement"),
             ("member.db.pg", R, "owner is replaced"),
             ("owner.edge", R, "image changed: forces replacement"),
             ("helper.edge", C, "owner is replaced"),
             ("member.edge.app", R, "owner is replaced"),
             ("member.edge.web", R, "owner is replaced"),
         ]),
    Case("owner-command-changed-replaces-owner-and-members",
         spec=edit('[groups.db]\n', '[groups.db]\nowner_command = ["sleep", "inf"]\n'),
         expect=[
             ("owner.db", R, "command changed: forces replacement"),
             ("member.db.pg", R, "owner is replaced"),
         ]),
    Case("member-image-changed-replaces-that-member-only",
         spec=edit('image = "app:1"', 'image = "app:2"'),
         expect=[("member.edge.app", R, "image changed: forces replacement")]),
    Case("member-command-changed-replaces-that-member-only",
         spec=edit('command = ["serve", "--port", "80"]', 'command = ["serve", "--port", "81"]'),
         expect=[("member.edge.app", R, "command changed: forces replacement")]),
    Case("member-env-changed-replaces-that-member-only",
         spec=edit('environment = { TZ = "UTC" }', 'environment = { TZ = "Europe/Paris" }'),
         expect=[("member.edge.app", R, "environment changed: forces replacement")]),
    Case("dependent-member-changed-leaves-its-dependency-alone",
         spec=edit('image = "nginx:1.27"', 'image = "nginx:1.28"'),
         expect=[("member.edge.web", R, "image changed: forces replacement")]),
    Case("member-restart-policy-changed-is-updated-in-place",
         spec=edit('image = "postgres:16"', 'image = "postgres:16"\nrestart = "always"'),
         expect=[("member.db.pg", U, "restart changed: updated in place")]),
    Case("owner-stopped-restarts-group",
         perturb=owner_stopped,
         expect=[
             ("owner.edge", RS, "exited (exit code 137)"),
             ("helper.edge", U, "owner restarts"),
             ("member.edge.app", RS, "owner restarts"),
             ("member.edge.web", RS, "owner restarts"),
         ]),
    Case("owner-restarted-after-members",
         perturb=owner_restarted_later,
         expect=[
             ("member.edge.app", RS, "owner restarted after member started: attached to a dead namespace"),
             ("member.edge.web", RS, "attached to a dead namespace"),
         ]),
    Case("owner-restarted-after-one-member-only",
         perturb=owner_restarted_between_members,
         expect=[("member.edge.app", RS, "attached to a dead namespace")]),
    Case("remote-owner-restarted-after-members-by-start-times",
         perturb=lambda o: owner_restarted_later(remote(o)),
         expect=[
             ("member.edge.app", RS, "owner restarted after member started: attached to a dead namespace"),
             ("member.edge.web", RS, "attached to a dead namespace"),
         ]),
    Case("remote-converged-is-no-op", perturb=remote, expect=[]),
    Case("members-from-listing-converged-is-no-op", perturb=from_listing, expect=[]),
    Case("members-from-listing-stranded-by-namespace",
         perturb=lambda o: owner_restarted_later(from_listing(o)),
         expect=[
             ("member.edge.app", RS, "owner restarted after member started: attached to a dead namespace"),
             ("member.edge.web", RS, "attached to a dead namespace"),
         ]),
    Case("member-joined-another-container",
         perturb=lambda o: evolve(o, "member.edge.web", network_container=container_id("gone")),
         expect=[("member.edge.web", R, "attached to a dead namespace")]),
    Case("member-netns-differs",
         perturb=lambda o: evolve(o, "member.db.pg", netns="net:[4026539999]"),
         expect=[("member.db.pg", RS, "not in its owner's network namespace")]),
    Case("member-netns-unknown-is-no-op",
         perturb=lambda o: evolve(o, "member.db.pg", netns=None), expect=[]),
    Case("member-exited",
         perturb=lambda o: evolve(o, "member.edge.app", status="exited", exit_code=1),
         expect=[("member.edge.app", RS, "exited (exit code 1)")]),
    Case("member-created-never-started",
         perturb=lambda o: evolve(o, "member.edge.app", status="created", started_at=0),
         expect=[("member.edge.app", RS, "created")]),
    Case("owner-missing-member-present",
         perturb=lambda o: live(drop(o, "owner.edge"), "edge", None),
         expect=[
             ("owner.edge", C, "owner does not exist"),
             ("helper.edge", C, "owner is new"),
             ("member.edge.app", R, "attached to a dead namespace"),
             ("member.edge.web", R, "attached to a dead namespace"),
         ]),
    Case("member-missing",
         perturb=lambda o: drop(o, "member.edge.app"),
         expect=[("member.edge.app", C, "member does not exist")]),
    Case("group-removed-from-spec",
         spec=BASE_SPEC.split("[groups.db]")[0],
         expect=[
             ("owner.db", D, "group 'db' is no longer in the spec"),
             ("member.db.pg", D, "group 'db'"),
         ]),
    Case("member-removed-from-spec",
         spec=edit('[groups.db.members.pg]\nimage = "postgres:16"\n', ""),
         expect=[("member.db.pg", D, "no longer in the spec")]),
    Case("destroy-deletes-everything",
         kwargs={"destroy": True},
         expect=[(a, D, "destroy requested") for a in CONTAINERS + ["network.default"]]),
    Case("destroy-on-empty-engine-is-empty",
         applied=None, kwargs={"destroy": True}, expect=[]),
    Case("replace-member",
         kwargs={"replace": ["member.edge.app"]},
         expect=[("member.edge.app", R, "--replace")]),
    Case("replace-owner-drags-group",
         kwargs={"replace": ["owner.db"]},
         expect=[("owner.db", R, "--replace"), ("member.db.pg", R, "owner is replaced")]),
    Case("duplicate-owner-container",
         perturb=duplicate_owner,
         expect=[(f"owner.edge#{container_id('shop-edge', 'dup')[:12]}", D, "duplicate container")]),
    Case("leftover-helper-container-is-removed-not-adopted",
         perturb=helper_leftover,
         expect=[(f"helper.edge#{container_id('shop-edge-sysctl')[:12]}", D, "left by an interrupted run")]),
    Case("member-renamed-by-hand-is-mended-in-place",
         perturb=lambda o: evolve(o, "member.edge.web", name="renamed"),
         expect=[("member.edge.web", U, "renamed by hand")]),
    Case("owner-restart-policy-changed-by-hand-is-mended",
         perturb=lambda o: evolve(o, "owner.db", restart_policy="no"),
         expect=[("owner.db", U, "restart policy changed by hand")]),
    Case("owner-recreated-by-hand-with-copied-labels",
         perturb=lambda o: evolve(o, "owner.db", actual={"image": "pause:3.10", "ports": ["5555:5432/tcp"]}),
         expect=[("owner.db", R, "ports changed by hand: forces replacement"),
                 ("member.db.pg", R, "owner is replaced")]),
    Case("member-image-swapped-by-hand",
         perturb=lambda o: evolve(o, "member.edge.app", actual={"image": "evil:1"}),
         expect=[("member.edge.app", R, "image changed by hand")]),
    Case("actual-unknown-is-no-op",
         perturb=lambda o: evolve(o, "owner.edge", actual={}), expect=[]),
    Case("member-restart-policy-unknown-is-no-op",
         perturb=lambda o: evolve(o, "member.db.pg", restart_policy=None), expect=[]),
]


def _plan(tmp_path, case: Case):
    want = load_spec(tmp_path, case.spec)
    observed = converged(load_spec(tmp_path, case.applied)) if case.applied else Observed(stack="shop")
    observed = case.perturb(observed)
    return make_plan(want, observed, **case.kwargs)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_plan_table(tmp_path, case: Case) -> None:
    plan = _plan(tmp_path, case)
    got = sorted((c.address, c.action.value) for c in plan.actionable)
    assert got == sorted((a, act.value) for a, act, _ in case.expect)
    for addr, _, reason in case.expect:
        change = plan.change_for(addr)
        assert reason in change.reason, (addr, change.reason)
    # Everything else planned is a no-op with no reason to show.
    for c in plan.changes:
        if c.action is Action.NOOP:
            assert c.address not in {a for a, _, _ in case.expect}
    # Addresses are unique in a plan.
    assert len({c.address for c in plan.changes}) == len(plan.changes)


# ------------------------------------------------------------------ details per case
def test_empty_engine_orders_and_edges(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], applied=None))
    assert plan.summary.add == 7 and plan.summary.change == 0 and plan.summary.destroy == 0
    assert ("network.default", "owner.edge") in plan.edges
    assert ("network.default", "owner.db") in plan.edges
    edges = set(plan.edges)
    assert ("owner.edge", "helper.edge") in edges
    assert ("helper.edge", "member.edge.app") in edges
    assert ("helper.edge", "member.edge.web") in edges
    assert ("member.edge.app", "member.edge.web") in edges
    assert ("owner.db", "member.db.pg") in edges
    assert "helper.db" not in {c.address for c in plan.changes}  # no sysctls, no helper
    g = plan.graph()
    assert list(g.predecessors("member.db.pg")) == ["owner.db"]


def test_converged_summary_is_empty(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", []))
    assert plan.summary.empty
    assert not plan.actionable
    assert {c.address for c in plan.changes} == set(ALL) | {"network.default"}
    assert all(c.action is Action.NOOP for c in plan.changes)


def test_sysctl_change_shows_before_and_after(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], spec=edit('"net.core.somaxconn" = 1024', '"net.core.somaxconn" = 2048')))
    helper = plan.change_for("helper.edge")
    assert helper.action is Action.UPDATE
    assert [(a.name, a.before, a.after, a.forces_replacement) for a in helper.attributes] == [
        ('sysctls["net.core.somaxconn"]', "1024", "2048", False)]
    assert helper.before["sysctls"]["net.core.somaxconn"] == "1024"
    assert helper.after["sysctls"]["net.core.somaxconn"] == "2048"
    assert "no container is recreated or restarted" in helper.reason
    for addr in ("owner.edge", "member.edge.app", "member.edge.web"):
        assert plan.change_for(addr).action is Action.NOOP
    assert plan.summary == type(plan.summary)(0, 1, 0)


def test_live_multi_value_sysctl_compares_normalized(tmp_path) -> None:
    """The kernel prints ``1024\\t65000``; after normalization it equals the spec."""
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    assert obs.sysctls["edge"]["net.ipv4.ip_local_port_range"] == "1024 65000"
    assert make_plan(want, obs).summary.empty


def test_ports_change_attributes_force_replacement(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], spec=edit('ports = ["8080:80",', 'ports = ["8081:80",')))
    owner = plan.change_for("owner.edge")
    assert owner.action is Action.REPLACE
    assert "forces replacement" in owner.reason and "ports" in owner.reason
    [attr] = owner.attributes
    assert attr.name == "ports" and attr.forces_replacement
    assert attr.before == ["127.0.0.1:9443:443/tcp", "8080:80/tcp"]
    assert attr.after == ["127.0.0.1:9443:443/tcp", "8081:80/tcp"]
    for m in ("member.edge.app", "member.edge.web"):
        assert plan.change_for(m).cause == "owner.edge"
        assert plan.change_for(m).container_id == container_id(f"shop-edge-{m.split('.')[-1]}")
    assert plan.change_for("helper.edge").cause == "owner.edge"
    # owner replace 1+1, helper create 1, two member replaces 2+2
    assert plan.summary == type(plan.summary)(add=4, change=0, destroy=3)


def test_member_change_does_not_drag_dependents(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], spec=edit('image = "app:1"', 'image = "app:2"')))
    app = plan.change_for("member.edge.app")
    assert [(a.name, a.before, a.after, a.forces_replacement) for a in app.attributes] == [
        ("image", "app:1", "app:2", True)]
    assert app.cause is None
    assert plan.change_for("member.edge.web").action is Action.NOOP


def test_owner_and_member_changed_together(tmp_path) -> None:
    spec = edit('image = "app:1"', 'image = "app:2"', edit('ports = ["8080:80",', 'ports = ["8081:80",'))
    plan = _plan(tmp_path, Case("x", [], spec=spec))
    assert plan.change_for("owner.edge").action is Action.REPLACE
    assert plan.change_for("member.edge.app").action is Action.REPLACE
    assert plan.change_for("member.edge.web").action is Action.REPLACE


def test_owner_stopped_helper_rewrites(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], perturb=owner_stopped))
    assert plan.change_for("helper.edge").cause == "owner.edge"
    assert plan.change_for("member.edge.app").cause == "owner.edge"
    assert plan.summary == type(plan.summary)(0, 4, 0)


def test_group_removed_edges_order_member_before_owner(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], spec=BASE_SPEC.split("[groups.db]")[0]))
    assert ("owner.db", "member.db.pg") in plan.edges
    deleted = plan.change_for("owner.db")
    assert deleted.container_id == container_id("shop-db")
    assert deleted.resource is None
    assert deleted.before == {"command": [], "image": "pause:3.10", "ports": ["5432:5432/tcp"]}


def test_destroy_summary_and_order(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], kwargs={"destroy": True}))
    assert plan.destroy
    assert plan.summary == type(plan.summary)(0, 0, 6)
    assert all(c.container_id for c in plan.changes)
    assert ("network.default", "owner.edge") in plan.edges  # owners go before their network
    for owner, member in [("owner.edge", "member.edge.app"), ("owner.edge", "member.edge.web"),
                          ("owner.db", "member.db.pg")]:
        assert (owner, member) in plan.edges


# ----------------------------------------------------------------- --target / --replace
def test_target_keeps_dependencies_only(tmp_path) -> None:
    spec = edit('image = "nginx:1.27"', 'image = "nginx:1.28"', edit('image = "postgres:16"', 'image = "postgres:17"'))
    plan = _plan(tmp_path, Case("x", [], spec=spec, kwargs={"targets": ["member.edge.web"]}))
    assert {c.address for c in plan.changes} == {"network.default", "owner.edge", "helper.edge",
                                                 "member.edge.app", "member.edge.web"}
    assert [(c.address, c.action) for c in plan.actionable] == [("member.edge.web", Action.REPLACE)]
    assert plan.change_for("member.db.pg") is None


def test_target_owner_replace_drags_members(tmp_path) -> None:
    spec = edit('ports = ["8080:80",', 'ports = ["8081:80",', edit('image = "postgres:16"', 'image = "postgres:17"'))
    plan = _plan(tmp_path, Case("x", [], spec=spec, kwargs={"targets": ["owner.edge"]}))
    assert sorted((c.address, c.action.value) for c in plan.actionable) == [
        ("helper.edge", "create"), ("member.edge.app", "replace"),
        ("member.edge.web", "replace"), ("owner.edge", "replace")]
    assert plan.change_for("member.db.pg") is None


def test_target_owner_replace_drags_member_that_also_changed(tmp_path) -> None:
    """A member whose own config changed is replaced for that reason (no ``cause``); when the
    targeted owner is replaced, it still must follow the owner into the new namespace,
    otherwise it is left running in the dead namespace after the targeted apply."""
    spec = edit('ports = ["8080:80",', 'ports = ["8081:80",', edit('image = "app:1"', 'image = "app:2"'))
    plan = _plan(tmp_path, Case("x", [], spec=spec, kwargs={"targets": ["owner.edge"]}))
    assert {c.address for c in plan.actionable} == {
        "owner.edge", "helper.edge", "member.edge.app", "member.edge.web"}


def test_target_owner_restart_drags_members(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], perturb=owner_stopped, kwargs={"targets": ["owner.edge"]}))
    assert sorted(c.address for c in plan.actionable) == [
        "helper.edge", "member.edge.app", "member.edge.web", "owner.edge"]


def test_target_noop_address_gives_empty_plan(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], kwargs={"targets": ["member.db.pg"]}))
    assert plan.summary.empty
    assert {c.address for c in plan.changes} == {"network.default", "owner.db", "member.db.pg"}


def test_target_orphan_address(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], spec=BASE_SPEC.split("[groups.db]")[0],
                                kwargs={"targets": ["member.db.pg"]}))
    assert [(c.address, c.action) for c in plan.actionable] == [("member.db.pg", Action.DELETE)]


def test_destroy_target_member_deletes_only_that_member(tmp_path) -> None:
    """``plan --destroy --target member.edge.web``: destroying a member needs nothing else
    destroyed; its dependencies (owner, the member it depends on) must be left alone."""
    plan = _plan(tmp_path, Case("x", [], kwargs={"destroy": True, "targets": ["member.edge.web"]}))
    assert [(c.address, c.action) for c in plan.actionable] == [("member.edge.web", Action.DELETE)]


def test_destroy_target_owner_takes_its_members(tmp_path) -> None:
    """Destroying a targeted owner must take the members in its namespace along (they
    would be stranded otherwise); the other group is untouched."""
    plan = _plan(tmp_path, Case("x", [], kwargs={"destroy": True, "targets": ["owner.edge"]}))
    assert sorted(c.address for c in plan.actionable) == [
        "member.edge.app", "member.edge.web", "owner.edge"]


@pytest.mark.parametrize("kwargs,needle", [
    ({"targets": ["owner.nope"]}, "--target owner.nope"),
    ({"targets": ["member.edge.nope"]}, "member.edge.nope"),
    ({"replace": ["member.edge.nope"]}, "--replace member.edge.nope"),
    ({"replace": ["owner.gone"]}, "owner.gone"),
])
def test_unknown_target_or_replace_is_plan_error(tmp_path, kwargs, needle) -> None:
    with pytest.raises(PlanError) as exc:
        _plan(tmp_path, Case("x", [], kwargs=kwargs))
    assert needle in str(exc.value)


def test_replace_of_an_orphan_is_refused(tmp_path) -> None:
    with pytest.raises(PlanError):
        _plan(tmp_path, Case("x", [], spec=BASE_SPEC.split("[groups.db]")[0],
                             kwargs={"replace": ["owner.db"]}))


def test_replace_helper_is_not_silently_ignored(tmp_path) -> None:
    """``--replace helper.edge`` is accepted as a known address; it must then do something
    (rewrite the sysctls) or be refused, not plan a silent no-op."""
    try:
        plan = _plan(tmp_path, Case("x", [], kwargs={"replace": ["helper.edge"]}))
    except PlanError:
        return
    assert plan.change_for("helper.edge").action is not Action.NOOP


def test_replace_owner_when_owner_missing_creates(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], perturb=lambda o: drop(o, "owner.db"), kwargs={"replace": ["owner.db"]}))
    assert plan.change_for("owner.db").action is Action.CREATE


# -------------------------------------------------------------------- odd observed states
def test_duplicate_prefers_container_with_the_wanted_name(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    owner = find(obs, "owner.edge")
    # The stray one sorts first by name, but the one named as the spec names it is kept.
    stray = attrs.evolve(owner, id=container_id("x"), name="shop-aaa", config_hash="0" * 16)
    plan = make_plan(want, add(obs, stray))
    assert plan.change_for("owner.edge").action is Action.NOOP
    assert plan.change_for("owner.edge").container_id == owner.id
    dup = plan.change_for(f"owner.edge#{stray.id[:12]}")
    assert dup.action is Action.DELETE and dup.container_id == stray.id
    assert plan.summary == type(plan.summary)(0, 0, 1)


def test_duplicate_members_of_a_removed_group(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    pg = find(obs, "member.db.pg")
    obs = add(obs, attrs.evolve(pg, id=container_id("pg2"), name="shop-db-pg-2"))
    plan = make_plan(load_spec(tmp_path, BASE_SPEC.split("[groups.db]")[0]), obs)
    deletes = sorted(c.address for c in plan.actionable)
    assert deletes == sorted(["owner.db", "member.db.pg", f"member.db.pg#{container_id('pg2')[:12]}"])
    assert {c.container_id for c in plan.actionable} == {
        container_id("shop-db"), pg.id, container_id("pg2")}


def test_container_with_unknown_role_is_deleted(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    odd = ObservedContainer(id=container_id("odd"), name="shop-odd", role=None, group="edge")
    plan = make_plan(want, add(converged(want), odd))
    [change] = plan.actionable
    assert change.action is Action.DELETE and change.container_id == odd.id


def test_helper_container_is_never_taken_for_the_helper_resource(tmp_path) -> None:
    """A helper container is short-lived: one still on the engine is not ``helper.edge``
    (whose state is the live sysctls), it is a leftover to remove."""
    plan = _plan(tmp_path, Case("x", [], perturb=helper_leftover))
    helper = plan.change_for("helper.edge")
    assert helper.action is Action.NOOP and helper.container_id is None
    [leftover] = plan.actionable
    assert leftover.container_id == container_id("shop-edge-sysctl")
    assert leftover.resource is None


def test_destroy_removes_a_leftover_helper(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], perturb=helper_leftover, kwargs={"destroy": True}))
    assert container_id("shop-edge-sysctl") in {c.container_id for c in plan.actionable}
    assert plan.summary.destroy == 7


def test_renamed_member_mend_attributes(tmp_path) -> None:
    plan = _plan(tmp_path, Case("x", [], perturb=lambda o: evolve(o, "member.edge.web", name="renamed")))
    web = plan.change_for("member.edge.web")
    assert [(a.name, a.before, a.after) for a in web.attributes] == [("name", "renamed", "shop-edge-web")]
    assert web.container_name == "renamed"
    assert plan.summary == type(plan.summary)(0, 1, 0)


def test_member_running_owner_exited_and_recreated_member(tmp_path) -> None:
    """The owner was recreated (new id) and is now stopped: the member must be replaced."""
    want = load_spec(tmp_path, BASE_SPEC)
    obs = evolve(converged(want), "owner.db", id=container_id("new-owner"), status="exited")
    plan = make_plan(want, obs)
    assert plan.change_for("owner.db").action is Action.RESTART
    assert plan.change_for("member.db.pg").action is Action.REPLACE


def test_owner_config_label_missing_still_replaces(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = evolve(converged(want), "owner.db", config=None, config_hash="")
    change = make_plan(want, obs).change_for("owner.db")
    assert change.action is Action.REPLACE
    assert "forces replacement" in change.reason


# ------------------------------------------------------------------------------ summary
def test_summary_counts_each_action(tmp_path) -> None:
    spec = edit('image = "app:1"', 'image = "app:2"',  # member replace: +1 -1
                edit('"net.core.somaxconn" = 1024', '"net.core.somaxconn" = 2048',  # helper update: ~1
                     BASE_SPEC.split("[groups.db]")[0]))  # owner.db, member.db.pg delete: -2
    obs = converged(load_spec(tmp_path, BASE_SPEC))
    obs = evolve(obs, "member.edge.web", status="exited", exit_code=137)  # restart: ~1
    plan = make_plan(load_spec(tmp_path, spec), obs)
    assert sorted((c.address, c.action.value) for c in plan.actionable) == [
        ("helper.edge", "update"), ("member.db.pg", "delete"), ("member.edge.app", "replace"),
        ("member.edge.web", "restart"), ("owner.db", "delete")]
    s = plan.summary
    assert (s.add, s.change, s.destroy) == (1, 2, 3)
    assert not s.empty


def test_plan_is_deterministic(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = owner_stopped(converged(want))
    shuffled = attrs.evolve(obs, containers=tuple(reversed(obs.containers)))
    a, b = make_plan(want, obs), make_plan(list(want), shuffled)
    assert a.changes == b.changes and a.edges == b.edges


def test_fingerprint_moves_with_state(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    assert make_plan(want, obs).fingerprint == make_plan(want, obs).fingerprint
    assert make_plan(want, obs).fingerprint != make_plan(want, owner_stopped(obs)).fingerprint
    moved = live(obs, "edge", {**obs.sysctls["edge"], "net.core.somaxconn": "4096"})
    assert make_plan(want, obs).fingerprint != make_plan(want, moved).fingerprint


def test_plan_images_are_what_creates_and_rewrites_need(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    every = {image for r in want for image in r.images}
    assert set(make_plan(want, Observed(stack="shop")).images()) == every
    converged_plan = make_plan(want, converged(want))
    assert converged_plan.images() == []
    assert set(converged_plan.images(needed_only=False)) == every


# ------------------------------------------------- states that are not "down"
def test_a_one_shot_member_that_exited_0_is_complete(tmp_path) -> None:
    """restart = "no" (the default) and exit code 0: done, not restarted on every apply;
    a failure (exit code 1) or a policy that restarts is still started again."""
    want = load_spec(tmp_path, BASE_SPEC)
    done = evolve(converged(want), "member.edge.app", status="exited", exit_code=0)
    assert make_plan(want, done).change_for("member.edge.app").action is Action.NOOP
    failed = evolve(converged(want), "member.edge.app", status="exited", exit_code=1)
    assert make_plan(want, failed).change_for("member.edge.app").action is Action.RESTART
    always = load_spec(tmp_path, BASE_SPEC.replace('image = "app:1"', 'image = "app:1"\nrestart = "always"'))
    stopped = evolve(converged(always), "member.edge.app", status="exited", exit_code=0)
    assert make_plan(always, stopped).change_for("member.edge.app").action is Action.RESTART


def test_a_paused_owner_is_unpaused_not_restarted(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    plan = make_plan(want, evolve(converged(want), "owner.edge", status="paused"))
    owner = plan.change_for("owner.edge")
    assert owner.action is Action.UPDATE and "paused by hand" in owner.reason
    assert [(a.name, a.after) for a in owner.attributes] == [("state", "running")]
    assert {c.address for c in plan.actionable} == {"owner.edge"}, "members keep the namespace"
    member = make_plan(want, evolve(converged(want), "member.edge.web", status="paused"))
    assert member.change_for("member.edge.web").action is Action.UPDATE


def test_a_member_the_engine_keeps_restarting_is_left_to_the_engine(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    plan = make_plan(want, evolve(converged(want), "member.edge.app", status="restarting",
                                  exit_code=3))
    assert plan.change_for("member.edge.app").action is Action.NOOP
