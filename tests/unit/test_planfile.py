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
        "mixed": make_plan(gone, evolve(drop(obs, "member.edge.app"), "member.edge.web", status="exited", exit_code=137)),
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


# -------------------------------------------------------- a saved plan is input too
def _change(doc: dict, address: str) -> dict:
    return next(c for c in doc["plan"]["changes"] if c["address"] == address)


def _sysctl_update_plan(tmp_path) -> dict:
    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    changed = load_spec(tmp_path, BASE_SPEC.replace('"net.core.somaxconn" = 1024',
                                                    '"net.core.somaxconn" = 2048'))
    return json.loads(planfile.dumps(make_plan(changed, obs), KEYS, IMAGES))


@pytest.mark.parametrize("edit, fragment", [
    # busybox's sysctl swaps '.' and '/': this name writes the host's fs.lease-break-time.
    (lambda d: _change(d, "helper.edge")["resource"]["config"]["sysctls"].update(
        {"net.//.fs.lease-break-time": "1"}), "uses slashes"),
    (lambda d: _change(d, "helper.edge")["resource"]["config"]["sysctls"].update(
        {"vm.swappiness": "1"}), "not namespaced"),
    (lambda d: _change(d, "helper.edge")["resource"]["config"]["sysctls"].update(
        {"net.ipv4.tcp_rmem": "1 2"}), "takes 3 values"),
    (lambda d: _change(d, "helper.edge")["resource"]["config"]["sysctls"].update(
        {"net.core.somaxconn": "-0"}), "not a plain decimal"),
    # Another stack's owner, or another group's.
    (lambda d: _change(d, "helper.edge")["resource"]["extra"].update(owner="other-edge"),
     "joins 'other-edge', not the owner of its group"),
    (lambda d: _change(d, "member.edge.app")["resource"]["extra"].update(owner="shop-db"),
     "joins 'shop-db'"),
    (lambda d: _change(d, "member.edge.app")["resource"].update(name="victim"),
     "container name 'victim'"),
    (lambda d: _change(d, "member.edge.app")["resource"]["config"].update(image="Bad Image"),
     "not a valid image reference"),
    (lambda d: _change(d, "member.edge.app")["resource"]["config"].update(
        volumes=["/:/host", "/srv:/proc/sys"]), "mounts under /proc"),
    (lambda d: _change(d, "owner.edge")["resource"]["config"].update(
        ports=["[fe80::1%lo]:8080:80/tcp"]), "zone id"),
    (lambda d: _change(d, "owner.edge")["resource"]["extra"]["sysctls"].update(
        {"kernel.core_pattern": "|/tmp/x"}), "not namespaced"),
    (lambda d: d["plan"].update(stack="../x"), "invalid stack name"),
    (lambda d: _change(d, "member.edge.web")["attributes"].append(
        {"name": "name", "before": "shop-edge-web", "after": "victim", "forces_replacement": False}),
     "renames to 'victim'"),
    (lambda d: d["observe"]["sysctl_keys"]["edge"].append("fs.file-max"), "not namespaced"),
])
def test_a_hand_edited_plan_is_validated_again(tmp_path, edit, fragment) -> None:
    doc = _sysctl_update_plan(tmp_path)
    planfile.load(_write(tmp_path, doc))  # as written by plan --out: accepted
    edit(doc)
    with pytest.raises(PlanError, match="nothing was applied") as exc:
        planfile.load(_write(tmp_path, doc))
    assert fragment in str(exc.value)


@pytest.mark.parametrize("observe", [
    {"sysctl_keys": ["net.core.somaxconn"], "helper_images": {}},
    {"sysctl_keys": {"edge": "net.core.somaxconn"}, "helper_images": {}},
    {"sysctl_keys": {}, "helper_images": ["busybox"]},
    {"sysctl_keys": {}, "helper_images": {}, "refresh": "yes"},
])
def test_a_malformed_observe_section_is_a_plan_error(tmp_path, observe) -> None:
    doc = _saved(tmp_path)
    doc["observe"] = observe
    with pytest.raises(PlanError, match="cannot read saved plan"):
        planfile.load(_write(tmp_path, doc))


def test_check_current_refuses_an_id_moved_to_another_address(tmp_path) -> None:
    """A helper or member joins the owner id of its group's owner change: that id must
    be the observed owner of that group, not any container of the stack."""
    import attrs

    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    plan = make_plan(want, obs)
    other = next(c.id for c in obs.containers if c.address == "owner.db")
    forged = attrs.evolve(plan, changes=tuple(
        attrs.evolve(c, container_id=other) if c.address == "owner.edge" else c
        for c in plan.changes))
    with pytest.raises(PlanError, match="owner.edge -> .*owner.db"):
        planfile.check_current("p", forged, obs)


def test_a_rename_makes_a_saved_plan_stale(tmp_path) -> None:
    from stackctl.errors import StalePlanError

    want = load_spec(tmp_path, BASE_SPEC)
    obs = converged(want)
    plan = make_plan(want, obs)
    with pytest.raises(StalePlanError):
        planfile.check_current("p", plan, evolve(obs, "owner.edge", name="shop-edge-moved"))


def test_a_plan_file_is_written_for_its_owner_only(tmp_path) -> None:
    import os
    import stat

    f = tmp_path / "p.json"
    f.write_text("old")
    os.chmod(f, 0o644)
    planfile.save(f, "{}\n")
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert f.read_text() == "{}\n"
    planfile.save(tmp_path / "new.json", "{}\n")
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o600
    with pytest.raises(PlanError, match="does not exist"):
        planfile.save(tmp_path / "missing" / "p.json", "{}")
    with pytest.raises(PlanError, match="is a directory"):
        planfile.save(tmp_path, "{}")
