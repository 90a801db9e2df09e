"""Saved plans: dumps/load round-trip, refusal of foreign or newer files, detection."""

from __future__ import annotations

import json

import pytest

from stackfix import BASE_SPEC, converged, drop, evolve, load_spec
from stackctl.errors import PlanError
from stackctl.observed import Observed
from stackctl.plan import make_plan
from stackctl.plan import file as planfile
from stackctl.plan.model import FORMAT_VERSION, Plan

KEYS = {"edge": ["net.core.somaxconn", "net.ipv4.ip_local_port_range"]}
IMAGES = {"edge": "busybox:1.36"}


def _plans(tmp_path) -> dict[str, Plan]:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    changed = load_spec(tmp_path, BASE_SPEC.replace('ports = ["8080:80",', 'ports = ["8081:80",')
                        .replace('"net.core.somaxconn" = 1024', '"net.core.somaxconn" = 2048'))
    gone = load_spec(tmp_path, BASE_SPEC.split("[groups.db]")[0])
    return {
        "create": make_plan(want, Observed(stack="shop")),
        "no-op": make_plan(want, obs),
        "replace": make_plan(changed, obs),
        "mixed": make_plan(gone, evolve(drop(obs, "member.edge.app"), "member.edge.web", status="exited")),
        "destroy": make_plan(want, obs, destroy=True),
        "target": make_plan(changed, obs, targets=["member.edge.web"]),
    }


@pytest.mark.parametrize("kind", ["create", "no-op", "replace", "mixed", "destroy", "target"])
def test_round_trip(tmp_path, kind) -> None:
    plan = _plans(tmp_path)[kind]
    f = tmp_path / "plan.out"
    f.write_text(planfile.dumps(plan, KEYS, IMAGES))
    loaded, keys, images, refresh = planfile.load(f)
    assert refresh is True
    assert loaded == plan
    assert keys == KEYS and images == IMAGES
    # What the applier relies on survives: actions, resources, ids, edges, summary.
    assert loaded.summary == plan.summary
    assert loaded.edges == plan.edges
    assert loaded.fingerprint == plan.fingerprint
    assert loaded.destroy == plan.destroy
    for a, b in zip(loaded.changes, plan.changes):
        assert a.action is b.action
        assert a.resource == b.resource
        if a.resource is not None:
            assert a.resource.config_hash == b.resource.config_hash
    # Dumping the loaded plan again gives the same bytes.
    assert planfile.dumps(loaded, keys, images) == f.read_text()


def test_dumps_is_json_with_kind_and_version(tmp_path) -> None:
    doc = json.loads(planfile.dumps(_plans(tmp_path)["replace"], KEYS, IMAGES))
    assert doc["kind"] == "stackctl-plan"
    assert doc["plan"]["format_version"] == FORMAT_VERSION


def _write(tmp_path, doc, name="plan.out"):
    f = tmp_path / name
    f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return f


def _saved(tmp_path) -> dict:
    return json.loads(planfile.dumps(_plans(tmp_path)["replace"], KEYS, IMAGES))


def test_other_kind_is_refused(tmp_path) -> None:
    doc = _saved(tmp_path)
    doc["kind"] = "terraform-plan"
    f = _write(tmp_path, doc)
    with pytest.raises(PlanError) as exc:
        planfile.load(f)
    msg = str(exc.value)
    assert str(f) in msg and "not a stackctl plan file" in msg and "stackctl plan --out" in msg


def test_other_format_version_is_refused(tmp_path) -> None:
    doc = _saved(tmp_path)
    doc["plan"]["format_version"] = "2"
    f = _write(tmp_path, doc)
    with pytest.raises(PlanError) as exc:
        planfile.load(f)
    msg = str(exc.value)
    assert "'2'" in msg and repr(FORMAT_VERSION) in msg and "stackctl plan --out" in msg


@pytest.mark.parametrize("content", [
    "",                                   # empty
    "{not json",                          # broken JSON
    '{"kind": "stackctl-plan"}',          # no plan
    '{"kind": "stackctl-plan", "plan": {"format_version": "1"}}',  # plan without fields
    "\xff\xfe",                            # not UTF-8 text once written as latin-1
])
def test_unreadable_plan_is_plan_error(tmp_path, content) -> None:
    f = tmp_path / "plan.out"
    f.write_bytes(content.encode("latin-1"))
    with pytest.raises(PlanError) as exc:
        planfile.load(f)
    assert "cannot read saved plan" in str(exc.value)


@pytest.mark.parametrize("doc", [
    [1, 2, 3],                                           # a JSON array, not an object
    {"kind": "stackctl-plan", "plan": []},               # plan is not an object
    {"kind": "stackctl-plan", "plan": "1"},
])
def test_wrong_json_shapes_are_plan_errors(tmp_path, doc) -> None:
    """Whatever JSON the file holds, load() reports a PlanError, never a traceback."""
    f = _write(tmp_path, doc)
    with pytest.raises(PlanError):
        planfile.load(f)


def test_missing_observe_section_is_plan_error(tmp_path) -> None:
    doc = _saved(tmp_path)
    del doc["observe"]
    with pytest.raises(PlanError):
        planfile.load(_write(tmp_path, doc))


def test_missing_file_is_plan_error(tmp_path) -> None:
    with pytest.raises(PlanError):
        planfile.load(tmp_path / "nope.plan")


def test_is_plan_file_distinguishes_spec_from_plan(tmp_path) -> None:
    plan_f = tmp_path / "tfplan"
    plan_f.write_text(planfile.dumps(_plans(tmp_path)["replace"], KEYS, IMAGES))
    assert planfile.is_plan_file(plan_f)
    assert planfile.is_plan_file(str(plan_f))

    spec_f = tmp_path / "stack.toml"
    spec_f.write_text(BASE_SPEC)
    assert not planfile.is_plan_file(spec_f)

    # A spec without the .toml suffix is still a spec: it does not start with '{'.
    spec_noext = tmp_path / "stackspec"
    spec_noext.write_text(BASE_SPEC)
    assert not planfile.is_plan_file(spec_noext)

    # A directory of specs, and a path that does not exist, are not plan files.
    assert not planfile.is_plan_file(tmp_path)
    assert not planfile.is_plan_file(tmp_path / "missing")

    # Leading whitespace before the JSON object is fine.
    padded = tmp_path / "padded.json"
    padded.write_text("\n  " + plan_f.read_text())
    assert planfile.is_plan_file(padded)
    assert planfile.load(padded)[0] == planfile.load(plan_f)[0]


def test_check_current_refuses_stale_and_foreign_plans(tmp_path) -> None:
    from stackctl.errors import StalePlanError
    from stackctl.plan.model import Change

    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    plan = make_plan(want, obs, destroy=True)
    planfile.check_current("p", plan, obs)  # fresh and ours: accepted

    moved = evolve(obs, "member.edge.web", status="exited")
    with pytest.raises(StalePlanError, match="stale"):
        planfile.check_current("p", plan, moved)

    import attrs

    forged = attrs.evolve(plan, changes=plan.changes + (
        Change(address="member.edge.x", action=plan.changes[0].action, container_id="f" * 64,
               container_name="someone-else"),))
    with pytest.raises(PlanError, match="not part of stack 'shop'"):
        planfile.check_current("p", forged, obs)
