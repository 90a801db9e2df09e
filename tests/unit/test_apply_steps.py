"""stackctl.apply: a plan's steps, their order, and the Applier's failure reporting.

The engine here is a fake in memory that implements the EngineActions protocol and
records what was asked of it: this tests the applier's ordering, not an engine.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Optional

import attrs
import pytest

from stackfix import BASE_SPEC, container_id, converged, evolve, load_spec
from stackctl.apply import Applier, Event, steps_of
from stackctl.errors import ApplyError, EngineError
from stackctl.observed import Observed
from stackctl.plan import Action, make_plan
from stackctl.plan.model import Plan
from stackctl.resources import Resource

DAG_SPEC = """
[stack]
name = "shop"

[defaults]
owner_image = "pause:3.10"

[groups.edge]
ports = ["8080:80"]
sysctls = { "net.core.somaxconn" = 1024 }

[groups.edge.members.a]
image = "a:1"

[groups.edge.members.b]
image = "b:1"
depends_on = ["a"]

[groups.edge.members.c]
image = "c:1"
depends_on = ["b"]

[groups.edge.members.d]
image = "d:1"
depends_on = ["a", "c"]

[groups.other]
ports = ["9090:90"]
sysctls = { "net.ipv4.tcp_syncookies" = 0 }

[groups.other.members.z]
image = "z:1"
"""


class FakeEngine:  # also used by test_planner_networks
    """Records every call as (op, address) in a global order; fails on request."""

    def __init__(self, observed: Optional[Observed] = None, fail: dict[tuple[str, str], Exception] | None = None,
                 sleep: float = 0.0, seed: int = 0) -> None:
        self.by_id = {c.id: c.address for c in (observed.containers if observed else ())}
        self.by_id.update({n.id: n.address for n in (observed.networks if observed else ())})
        self.by_id.update({v.name: v.address for v in (observed.volumes if observed else ())})
        self.joins: list[tuple[str, str, str, tuple[str, ...]]] = []
        self.unhealthy: dict[str, str] = {}
        self.fail = fail or {}
        self.lock = threading.Lock()
        self.seq = itertools.count()
        self.log: list[tuple[str, str]] = []
        self.start: dict[tuple[str, str], int] = {}
        self.end: dict[tuple[str, str], int] = {}
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.updates: list[tuple[str, str, dict[str, str]]] = []
        self.joined: list[tuple[str, str]] = []
        self.writes: list[tuple[str, bool]] = []
        self.active = 0
        self.max_active = 0

    def _call(self, op: str, addr: str) -> None:
        key = (op, addr)
        with self.lock:
            self.start[key] = next(self.seq)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            pause = self.rng.uniform(0, self.sleep) if self.sleep else 0
        try:
            if pause:
                time.sleep(pause)
            if key in self.fail:
                raise self.fail[key]
        finally:
            with self.lock:
                self.active -= 1
                self.end[key] = next(self.seq)
                self.log.append(key)

    # EngineActions
    def create_owner(self, stack: str, r: Resource) -> str:
        assert stack == "shop"
        self._call("create", r.address)
        cid = container_id(r.name, "new")
        self.by_id[cid] = r.address
        return cid

    def _owner_id(self, r: Resource, owner: str) -> None:
        # Joined by the id observe listed or create_owner returned, never by name.
        assert self.by_id.get(owner) == f"owner.{r.group}", (owner, r.address)
        self.joined.append((r.address, owner))

    def create_member(self, stack: str, r: Resource, owner: str) -> str:
        self._owner_id(r, owner)
        self._call("create", r.address)
        return container_id(r.name, "new")

    def write_sysctls(self, stack: str, r: Resource, owner: str,
                      skip_if_live: bool = False) -> dict[str, str]:
        self._owner_id(r, owner)
        self.writes.append((r.address, skip_if_live))
        self._call("write", r.address)
        return dict(r.config["sysctls"])

    def restart(self, stack: str, cid: str, name: str) -> None:
        self._call("restart", self.by_id[cid])

    def update(self, stack: str, cid: str, name: str, changes: dict[str, str]) -> None:
        self.updates.append((self.by_id[cid], name, dict(changes)))
        self._call("update", self.by_id[cid])

    def remove(self, stack: str, cid: str, name: str) -> None:
        self._call("remove", self.by_id[cid])

    def wait_ready(self, names, timeout, stop=None, interval=0.5) -> dict[str, str]:
        not_ready = {}
        for addr in names:
            self._call("wait", addr)
            if addr in self.unhealthy:
                not_ready[addr] = self.unhealthy[addr]
        return not_ready

    def create_network(self, stack: str, r: Resource) -> str:
        self._call("create", r.address)
        return container_id(r.name, "new-network")

    def remove_network(self, stack: str, nid: str, name: str) -> None:
        self._call("remove", self.by_id[nid])

    def create_volume(self, stack: str, r: Resource) -> str:
        self._call("create", r.address)
        return r.name

    def remove_volume(self, stack: str, name: str) -> None:
        self._call("remove", self.by_id[name])

    def connect(self, stack: str, cid: str, name: str, network: str, aliases: list[str]) -> None:
        self.joins.append(("connect", self.by_id[cid], network, tuple(aliases)))
        self._call("connect", f"{self.by_id[cid]}@{network}")

    def disconnect(self, stack: str, cid: str, name: str, network: str) -> None:
        self.joins.append(("disconnect", self.by_id[cid], network, ()))
        self._call("disconnect", f"{self.by_id[cid]}@{network}")

    # helpers for assertions
    def before(self, a: tuple[str, str], b: tuple[str, str]) -> bool:
        return self.end[a] < self.start[b]


def _edit(old: str, new: str, text: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _run(plan: Plan, engine: FakeEngine, parallelism: int = 10, **kw) -> list[Event]:
    events: list[Event] = []
    lock = threading.Lock()

    def on_event(e: Event) -> None:
        with lock:
            events.append(e)

    Applier(engine, plan, parallelism, on_event, **kw).run()
    return events


# ------------------------------------------------------------------------ steps_of
def test_steps_of_owner_replace(tmp_path) -> None:
    obs = converged(load_spec(tmp_path, BASE_SPEC))
    plan = make_plan(load_spec(tmp_path, _edit('ports = ["8080:80",', 'ports = ["8081:80",', BASE_SPEC)), obs)
    steps, edges = steps_of(plan)
    real = [s for s in steps if s[0] != "barrier"]
    assert sorted(real) == sorted([
        ("destroy", "owner.edge"), ("create", "owner.edge"), ("create", "helper.edge"),
        ("destroy", "member.edge.app"), ("create", "member.edge.app"),
        ("destroy", "member.edge.web"), ("create", "member.edge.web")])
    required = {(a, b) for a, b, req in edges if req}
    assert (("destroy", "member.edge.app"), ("destroy", "owner.edge")) in required
    assert (("destroy", "member.edge.web"), ("destroy", "owner.edge")) in required
    assert (("destroy", "owner.edge"), ("create", "owner.edge")) in required
    assert (("create", "owner.edge"), ("create", "helper.edge")) in required
    assert (("create", "helper.edge"), ("create", "member.edge.app")) in required
    assert (("create", "member.edge.app"), ("create", "member.edge.web")) in required
    # The barrier orders every destroy before every create without making them depend.
    barrier = [s for s in steps if s[0] == "barrier"]
    assert len(barrier) == 1
    ordering = {(a, b) for a, b, req in edges if not req}
    for s in real:
        if s[0] == "destroy":
            assert (s, barrier[0]) in ordering
        else:
            assert (barrier[0], s) in ordering


def test_steps_of_noop_plan_is_only_the_barrier(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    steps, edges = steps_of(make_plan(want, converged(want)))
    assert [s[0] for s in steps] == ["barrier"] and edges == []


# -------------------------------------------------------------------- applier order
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("parallelism", [1, 3, 10])
def test_owner_replace_order(tmp_path, seed: int, parallelism: int) -> None:
    obs = converged(load_spec(tmp_path, BASE_SPEC))
    plan = make_plan(load_spec(tmp_path, _edit('ports = ["8080:80",', 'ports = ["8081:80",', BASE_SPEC)), obs)
    engine = FakeEngine(obs, sleep=0.005, seed=seed)
    _run(plan, engine, parallelism)
    assert sorted(engine.log) == sorted([
        ("remove", "member.edge.app"), ("remove", "member.edge.web"), ("remove", "owner.edge"),
        ("create", "owner.edge"), ("write", "helper.edge"),
        ("create", "member.edge.app"), ("create", "member.edge.web")])
    # Members are destroyed before their owner.
    assert engine.before(("remove", "member.edge.app"), ("remove", "owner.edge"))
    assert engine.before(("remove", "member.edge.web"), ("remove", "owner.edge"))
    # Every destroy finishes before any create starts.
    removes = [k for k in engine.log if k[0] == "remove"]
    others = [k for k in engine.log if k[0] != "remove"]
    assert max(engine.end[k] for k in removes) < min(engine.start[k] for k in others)
    # Owner, then helper, then members; depends_on among members.
    assert engine.before(("create", "owner.edge"), ("write", "helper.edge"))
    assert engine.before(("write", "helper.edge"), ("create", "member.edge.app"))
    assert engine.before(("write", "helper.edge"), ("create", "member.edge.web"))
    assert engine.before(("create", "member.edge.app"), ("create", "member.edge.web"))
    assert engine.max_active <= parallelism


@pytest.mark.parametrize("seed", range(4))
def test_create_from_scratch_respects_depends_on(tmp_path, seed: int) -> None:
    plan = make_plan(load_spec(tmp_path, DAG_SPEC), Observed(stack="shop"))
    engine = FakeEngine(sleep=0.005, seed=seed)
    _run(plan, engine, parallelism=10)
    assert len(engine.log) == 1 + 2 + 2 + 5  # the stack network, owners, helpers, members
    for g, members in (("edge", "abcd"), ("other", "z")):
        assert engine.before(("create", f"owner.{g}"), ("write", f"helper.{g}"))
        for m in members:
            assert engine.before(("write", f"helper.{g}"), ("create", f"member.{g}.{m}"))
    for dep, m in [("a", "b"), ("b", "c"), ("a", "d"), ("c", "d")]:
        assert engine.before(("create", f"member.edge.{dep}"), ("create", f"member.edge.{m}"))


def test_depends_on_order_holds_through_an_unchanged_member(tmp_path) -> None:
    """c depends on b depends on a. When a and c are both replaced and b is unchanged,
    c must still be created after a (depends_on is transitive, as in Compose; Terraform
    keeps no-op nodes in its graph for this reason)."""
    before = load_spec(tmp_path, DAG_SPEC)
    after = _edit('image = "c:1"', 'image = "c:2"', _edit('image = "a:1"', 'image = "a:2"', DAG_SPEC))
    obs = converged(before)
    plan = make_plan(load_spec(tmp_path, after), obs)
    assert {c.address: c.action for c in plan.actionable} == {
        "member.edge.a": Action.REPLACE, "member.edge.c": Action.REPLACE}
    steps, edges = steps_of(plan)
    required = {(a, b) for a, b, req in edges if req}
    assert (("create", "member.edge.a"), ("create", "member.edge.c")) in required or any(
        (("create", "member.edge.a"), mid) in required and (mid, ("create", "member.edge.c")) in required
        for mid in steps)


def test_restart_order(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = evolve(converged(want), "owner.edge", status="exited", exit_code=137)
    obs = attrs.evolve(obs, sysctls={})
    plan = make_plan(want, obs)
    engine = FakeEngine(obs, sleep=0.003)
    _run(plan, engine)
    assert sorted(engine.log) == sorted([
        ("restart", "owner.edge"), ("write", "helper.edge"),
        ("restart", "member.edge.app"), ("restart", "member.edge.web")])
    assert engine.before(("restart", "owner.edge"), ("write", "helper.edge"))
    assert engine.before(("write", "helper.edge"), ("restart", "member.edge.app"))
    assert engine.before(("restart", "member.edge.app"), ("restart", "member.edge.web"))


def test_sysctl_update_touches_no_container(tmp_path) -> None:
    obs = converged(load_spec(tmp_path, BASE_SPEC))
    plan = make_plan(load_spec(tmp_path, _edit('"net.core.somaxconn" = 1024', '"net.core.somaxconn" = 2048', BASE_SPEC)), obs)
    engine = FakeEngine(obs)
    events = _run(plan, engine)
    assert engine.log == [("write", "helper.edge")]
    done = [e for e in events if e.phase == "done"]
    assert [(e.step, e.address) for e in done] == [("update", "helper.edge")]
    assert "net.core.somaxconn=2048" in done[0].detail


def test_destroy_removes_members_first(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    plan = make_plan(want, obs, destroy=True)
    engine = FakeEngine(obs, sleep=0.003)
    _run(plan, engine)
    assert sorted(engine.log) == sorted(("remove", a) for a in
                                        ["owner.db", "member.db.pg", "owner.edge", "member.edge.app", "member.edge.web",
                                         "network.default"])
    assert engine.before(("remove", "owner.edge"), ("remove", "network.default"))
    assert engine.before(("remove", "owner.db"), ("remove", "network.default"))
    assert engine.before(("remove", "member.db.pg"), ("remove", "owner.db"))
    assert engine.before(("remove", "member.edge.app"), ("remove", "owner.edge"))
    assert engine.before(("remove", "member.edge.web"), ("remove", "owner.edge"))
    # depends_on reversed: web (which depends on app) goes first.
    assert engine.before(("remove", "member.edge.web"), ("remove", "member.edge.app"))


def test_removed_group_frees_its_port_before_a_new_group_takes_it(tmp_path) -> None:
    obs = converged(load_spec(tmp_path, BASE_SPEC))
    spec = BASE_SPEC.replace("groups.db", "groups.pgsql")  # same port, new group
    plan = make_plan(load_spec(tmp_path, spec), obs)
    engine = FakeEngine(obs, sleep=0.003)
    _run(plan, engine)
    assert engine.before(("remove", "owner.db"), ("create", "owner.pgsql"))
    assert engine.before(("remove", "member.db.pg"), ("remove", "owner.db"))


def test_mend_in_place_calls_update(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = evolve(converged(want), "member.edge.web", name="renamed")
    plan = make_plan(want, obs)
    engine = FakeEngine(obs)
    _run(plan, engine)
    assert engine.updates == [("member.edge.web", "renamed", {"name": "shop-edge-web"})]
    assert engine.log == [("update", "member.edge.web")]


# ----------------------------------------------------------------------- failures
def test_failing_helper_skips_its_members_only(tmp_path) -> None:
    plan = make_plan(load_spec(tmp_path, DAG_SPEC), Observed(stack="shop"))
    engine = FakeEngine(fail={("write", "helper.edge"): EngineError("shop-edge-sysctl: sysctl helper failed")},
                        sleep=0.002)
    events: list[Event] = []
    with pytest.raises(ApplyError) as exc:
        Applier(engine, plan, 4, events.append).run()
    err = exc.value
    assert err.failures == (("helper.edge", "shop-edge-sysctl: sysctl helper failed"),)
    assert sorted(err.skipped) == ["member.edge.a", "member.edge.b", "member.edge.c", "member.edge.d"]
    # Nothing of the failed group's members ran; the other group converged.
    assert not [k for k in engine.log if k[1].startswith("member.edge.")]
    assert {("create", "owner.other"), ("write", "helper.other"), ("create", "member.other.z"),
            ("create", "owner.edge"), ("write", "helper.edge"),
            ("create", "network.default")} == set(engine.log)
    # Root causes only: no skipped member is reported as a failure.
    text = str(err)
    assert text.splitlines()[0] == "helper.edge: shop-edge-sysctl: sysctl helper failed"
    assert "not attempted because a dependency failed: member.edge.a, member.edge.b, member.edge.c, member.edge.d" in text
    skipped = {e.address: e.detail for e in events if e.phase == "skipped"}
    assert set(skipped) == {"member.edge.a", "member.edge.b", "member.edge.c", "member.edge.d"}
    assert all(d == "helper.edge failed" for d in skipped.values())
    assert [(e.step, e.address) for e in events if e.phase == "failed"] == [("create", "helper.edge")]


def test_two_root_causes_are_both_reported(tmp_path) -> None:
    plan = make_plan(load_spec(tmp_path, DAG_SPEC), Observed(stack="shop"))
    engine = FakeEngine(fail={("create", "member.edge.a"): EngineError("a: boom"),
                              ("create", "owner.other"): EngineError("other: port in use")})
    with pytest.raises(ApplyError) as exc:
        Applier(engine, plan, 4).run()
    assert sorted(exc.value.failures) == [("member.edge.a", "a: boom"), ("owner.other", "other: port in use")]
    # b, c, d need a (directly or through b, c); the other group's helper and member need its owner.
    assert sorted(exc.value.skipped) == ["helper.other", "member.edge.b", "member.edge.c",
                                         "member.edge.d", "member.other.z"]


def test_failed_member_destroy_keeps_the_owner(tmp_path) -> None:
    obs = converged(load_spec(tmp_path, BASE_SPEC))
    plan = make_plan(load_spec(tmp_path, _edit('ports = ["8080:80",', 'ports = ["8081:80",', BASE_SPEC)), obs)
    engine = FakeEngine(obs, fail={("remove", "member.edge.web"): EngineError("web: busy")})
    with pytest.raises(ApplyError) as exc:
        Applier(engine, plan, 2).run()
    assert exc.value.failures == (("member.edge.web", "web: busy"),)
    assert ("remove", "owner.edge") not in engine.log  # never removed while a member still uses it
    assert not [k for k in engine.log if k[0] != "remove"]
    assert "owner.edge" in exc.value.skipped


def test_unexpected_exception_becomes_an_engine_error_naming_the_container(tmp_path) -> None:
    plan = make_plan(load_spec(tmp_path, BASE_SPEC), Observed(stack="shop"))
    engine = FakeEngine(fail={("create", "owner.db"): KeyError("Id")})
    with pytest.raises(ApplyError) as exc:
        Applier(engine, plan, 2).run()
    [(addr, msg)] = exc.value.failures
    assert addr == "owner.db" and "shop-db" in msg and "KeyError" in msg
    assert exc.value.skipped == ("member.db.pg",)


def test_stop_reports_interruption(tmp_path) -> None:
    plan = make_plan(load_spec(tmp_path, BASE_SPEC), Observed(stack="shop"))
    stop = threading.Event()
    stop.set()
    engine = FakeEngine()
    with pytest.raises(ApplyError) as exc:
        Applier(engine, plan, 2, stop=stop).run()
    assert engine.log == []
    assert any(addr == "apply" and "interrupted before" in msg for addr, msg in exc.value.failures)


def test_success_events(tmp_path) -> None:
    plan = make_plan(load_spec(tmp_path, BASE_SPEC), Observed(stack="shop"))
    engine = FakeEngine()
    events = _run(plan, engine)
    starts = [(e.step, e.address) for e in events if e.phase == "start"]
    dones = [(e.step, e.address) for e in events if e.phase == "done"]
    assert sorted(starts) == sorted(dones) == sorted(("create", c.address) for c in plan.actionable)
    owner_done = next(e for e in events if e.phase == "done" and e.address == "owner.edge")
    assert owner_done.detail == f"id={container_id('shop-edge', 'new')[:12]}"


def test_plan_dependents_walks_edges_transitively() -> None:
    from stackctl.plan.model import Plan

    plan = Plan(stack="s", changes=(), fingerprint="",
                edges=(("owner.g", "helper.g"), ("helper.g", "member.g.a"),
                       ("member.g.a", "member.g.b"), ("owner.h", "member.h.x")))
    assert plan.dependents("owner.g") == {"helper.g", "member.g.a", "member.g.b"}
    assert plan.dependents("member.g.a") == {"member.g.b"}
    assert plan.dependents("member.g.b") == set()
    assert plan.dependents("owner.h") == {"member.h.x"}


def test_helper_and_members_join_the_owner_by_id(tmp_path) -> None:
    """Every joining step targets the owner's id: the one observe listed when the owner
    stays, the one create_owner returned when it is new; never a name."""
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    # The owner stays (sysctl drift), members are recreated.
    changed = load_spec(tmp_path, _edit('image = "app:1"', 'image = "app:2"',
                                        _edit('"net.core.somaxconn" = 1024',
                                              '"net.core.somaxconn" = 2048', BASE_SPEC)))
    engine = FakeEngine(obs)
    _run(make_plan(changed, obs), engine)
    owner_id = next(c.id for c in obs.containers if c.address == "owner.edge")
    assert sorted(engine.joined) == [("helper.edge", owner_id), ("member.edge.app", owner_id)]
    # Drift must be written, not merely read back.
    assert engine.writes == [("helper.edge", False)]
    # From scratch: the new owner's id, as create_owner returned it.
    empty = Observed(stack="shop")
    engine = FakeEngine(empty)
    _run(make_plan(want, empty), engine)
    new_id = container_id("shop-edge", "new")
    assert {owner for addr, owner in engine.joined if ".edge" in addr} == {new_id}
    assert ("helper.edge", True) in engine.writes  # a new owner has Docker's values


def test_replace_helper_writes_even_when_values_match(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    engine = FakeEngine(obs)
    _run(make_plan(want, obs, replace=["helper.edge"]), engine)
    assert engine.writes == [("helper.edge", False)]


def test_a_plan_without_its_owner_joins_nothing(tmp_path) -> None:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    plan = make_plan(want, obs, replace=["member.edge.app"])
    import attrs as _attrs

    plan = _attrs.evolve(plan, changes=tuple(c for c in plan.changes if c.address != "owner.edge"))
    engine = FakeEngine(obs)
    with pytest.raises(ApplyError, match="names no owner of group 'edge'"):
        _run(plan, engine)
    assert engine.joined == []
