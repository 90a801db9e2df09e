"""Planner and renderers for member options: in-place updates, env files (sensitive),
image identity. Pure: hand-built observed state, no engine."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from stackfix import BASE_SPEC, converged, evolve, find
from stackctl.images import canonical, familiar, pull_policies, resolve, short
from stackctl.observed import Observed
from stackctl.plan import Action, make_plan
from stackctl.render.human import render_plan
from stackctl.render.json_plan import render_json
from stackctl.resources import desired
from stackctl.spec import envfile, load

SECRET = "hunter2-do-not-print"


def _load(tmp_path: Path, text: str, files: dict[str, str] | None = None):
    for name, content in (files or {}).items():
        (tmp_path / name).write_text(content)
    f = tmp_path / "stack.toml"
    f.write_text(text)
    loaded = load(f, env={})
    return desired(loaded.stack, loaded.env_files)


def _spec(extra: str) -> str:
    return BASE_SPEC.replace('image = "postgres:16"\n', 'image = "postgres:16"\n' + extra)


def _actions(plan) -> dict[str, Action]:
    return {c.address: c.action for c in plan.actionable}


# ------------------------------------------------------------------------ in place
def test_limits_change_in_place_and_only_there(tmp_path):
    before = _load(tmp_path, _spec('mem_limit = "64m"\ncpus = 0.5\npids_limit = 50\n'))
    after = _load(tmp_path, _spec('mem_limit = "128m"\ncpus = 1\npids_limit = 60\n'))
    plan = make_plan(after, converged(before))
    assert _actions(plan) == {"member.db.pg": Action.UPDATE}
    change = plan.change_for("member.db.pg")
    assert change.reason == ("mem_limit, cpus and pids_limit changed: updated in place "
                             "(docker update), without a restart")
    assert {a.name: (a.before, a.after, a.forces_replacement) for a in change.attributes} == {
        "mem_limit": (64 * 2**20, 128 * 2**20, False), "cpus": (0.5, 1.0, False),
        "pids_limit": (50, 60, False)}


def test_updated_member_whose_live_values_match_is_a_no_op(tmp_path):
    """Labels keep creation's values after docker update: the live ones decide."""
    before = _load(tmp_path, _spec('mem_limit = "64m"\nrestart = "no"\n'))
    after = _load(tmp_path, _spec('mem_limit = "1g"\nrestart = "always"\n'))
    obs = evolve(converged(before), "member.db.pg", live={"mem_limit": 2**30, "cpus": None,
                                                          "pids_limit": None},
                 restart_policy="always")
    assert make_plan(after, obs).summary.empty


def test_limit_changed_by_hand_is_mended_in_place(tmp_path):
    spec = _load(tmp_path, _spec('mem_limit = "64m"\n'))
    obs = evolve(converged(spec), "member.db.pg", live={"mem_limit": 32 * 2**20, "cpus": None,
                                                        "pids_limit": None})
    change = make_plan(spec, obs).change_for("member.db.pg")
    assert change.action is Action.UPDATE
    assert change.reason == "mem_limit changed by hand: updated in place"


@pytest.mark.parametrize("key,value", [("mem_limit", '"64m"'), ("cpus", "0.5")])
def test_lifting_a_memory_or_cpu_limit_replaces(tmp_path, key, value):
    before = _load(tmp_path, _spec(f"{key} = {value}\n"))
    after = _load(tmp_path, _spec(""))
    change = make_plan(after, converged(before)).change_for("member.db.pg")
    assert change.action is Action.REPLACE
    assert change.reason == f"{key} removed, which docker update cannot do: forces replacement"


def test_lifting_a_pids_limit_is_in_place(tmp_path):
    before = _load(tmp_path, _spec("pids_limit = 50\n"))
    after = _load(tmp_path, _spec("pids_limit = -1\n"))
    assert _actions(make_plan(after, converged(before))) == {"member.db.pg": Action.UPDATE}


def test_other_options_replace_that_member_only(tmp_path):
    before = _load(tmp_path, _spec('user = "101"\n'))
    after = _load(tmp_path, _spec('user = "102"\nmem_limit = "64m"\n'))
    change = make_plan(after, converged(before)).change_for("member.db.pg")
    assert change.action is Action.REPLACE
    assert change.reason == "user changed: forces replacement"
    assert {a.name: a.forces_replacement for a in change.attributes} == {"user": True, "mem_limit": False}
    assert _actions(make_plan(after, converged(before))) == {"member.db.pg": Action.REPLACE}


def test_equivalent_spellings_hash_the_same(tmp_path):
    a = _load(tmp_path, _spec('cap_add = ["CAP_NET_ADMIN", "chown"]\nmem_limit = "1g"\n'
                              'stop_grace_period = "1m30s"\nstop_signal = "quit"\n'))
    b = _load(tmp_path, _spec('cap_add = ["chown", "NET_ADMIN"]\nmem_limit = "1024m"\n'
                              'stop_grace_period = "90s"\nstop_signal = "SIGQUIT"\n'))
    assert [r.config_hash for r in a] == [r.config_hash for r in b]


def test_unset_options_leave_the_config_as_before(tmp_path):
    """Containers created before the options existed keep their hash."""
    r = next(r for r in _load(tmp_path, BASE_SPEC) if r.address == "member.db.pg")
    assert set(r.config) == {"image", "command", "entrypoint", "environment", "volumes",
                             "restart", "init"}


# ------------------------------------------------------------------------ env files
def test_env_file_parse_spellings():
    text = ("# comment\n\nA=1\nexport B = two words \nC='single # kept' # comment\n"
            'D="tab\\tnew\\nline" # c\nE=\nF=x#y\n')
    assert envfile.parse(text) == {"A": "1", "B": "two words", "C": "single # kept",
                                   "D": "tab\tnew\nline", "E": "", "F": "x#y"}


@pytest.mark.parametrize("text,message", [
    (f"TOKEN {SECRET}\n", "line 1 is not KEY=VALUE"),
    (f"1TOKEN={SECRET}\n", "line 1: '1TOKEN' is not a valid variable name"),
    (f"A=1\nTOKEN=\"{SECRET}\n", "line 2: the value's double quote is not closed"),
    (f"TOKEN='{SECRET}' trailing\n", "line 1: text follows the closing quote"),
])
def test_env_file_errors_never_quote_a_value(text, message):
    with pytest.raises(envfile.EnvFileError) as err:
        envfile.parse(text)
    assert err.value.message == message
    assert SECRET not in str(err.value)


def test_env_file_digest_ignores_comments_and_quoting():
    assert envfile.digest(envfile.parse("A=1\n# x\nB='b'\n")) == envfile.digest(envfile.parse('B="b"\nA=1'))
    assert envfile.digest({"A": "1"}) != envfile.digest({"A": "2"})


def test_env_file_content_change_replaces_its_readers_and_is_masked(tmp_path):
    spec = _spec('env_file = "db.env"\n')
    before = _load(tmp_path, spec, {"db.env": f"PASSWORD={SECRET}\n"})
    after = _load(tmp_path, spec, {"db.env": f"PASSWORD={SECRET}!\n"})
    plan = make_plan(after, converged(before))
    assert _actions(plan) == {"member.db.pg": Action.REPLACE}
    assert plan.change_for("member.db.pg").reason == "env file db.env changed: forces replacement"
    text, doc = render_plan(plan), render_json(plan)
    assert "~ env_file = (sensitive) # forces replacement" in text
    assert '"content": "(sensitive)"' in doc
    for shown in (text, doc):
        assert SECRET not in shown and "sha256:" not in shown
    created = render_plan(make_plan(after, Observed(stack="shop")))
    assert '+ env_file    = [{"content": "(sensitive)", "path": "db.env"}]' in created


def test_env_file_is_read_relative_to_the_declaring_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.env").write_text("A=1\n")
    (tmp_path / "sub" / "stack.toml").write_text(_spec('env_file = ["x.env"]\n'))
    loaded = load(tmp_path / "sub" / "stack.toml", env={})
    (f,) = loaded.env_files[("db", "pg")]
    assert f.path == "x.env" and f.absolute == str(tmp_path / "sub" / "x.env")


# ------------------------------------------------------------------------ images
def test_references_are_compared_in_canonical_form():
    assert canonical("busybox") == "docker.io/library/busybox:latest"
    assert canonical("docker.io/library/busybox:1.36") == canonical("busybox:1.36")
    assert canonical("localhost:5000/app") == "localhost:5000/app:latest"
    assert canonical("registry.k8s.io/pause:3.10") == "registry.k8s.io/pause:3.10"
    digest = "sha256:" + "a" * 64
    assert canonical(f"app:1.4@{digest}") == f"docker.io/library/app@{digest}"
    assert familiar("docker.io/library/busybox") == "busybox:latest"
    listing = [{"Id": "sha256:" + "1" * 64, "RepoTags": ["busybox:latest", "app:1.4"],
                "RepoDigests": [f"app@{digest}"]},
               {"Id": "sha256:" + "2" * 64, "RepoTags": ["<none>:<none>"], "RepoDigests": None}]
    assert resolve(listing, ["busybox", "docker.io/library/app:1.4", f"app@{digest}",
                             "absent:1", "sha256:" + "2" * 64]) == {
        "busybox": "sha256:" + "1" * 64, "docker.io/library/app:1.4": "sha256:" + "1" * 64,
        f"app@{digest}": "sha256:" + "1" * 64, "sha256:" + "2" * 64: "sha256:" + "2" * 64}


def test_a_tag_that_moved_replaces_exactly_its_containers(tmp_path):
    spec = _load(tmp_path, BASE_SPEC)
    obs = converged(spec)
    old = find(obs, "member.db.pg").image_id
    new = "sha256:3f2a9c1e" + "0" * 56
    obs = attrs.evolve(obs, images={**obs.images, "postgres:16": new})
    plan = make_plan(spec, obs)
    assert _actions(plan) == {"member.db.pg": Action.REPLACE}
    assert plan.change_for("member.db.pg").reason == \
        f"image postgres:16 now names 3f2a9c1e (running {short(old)})"
    doc = json.loads(render_json(plan))
    (attr,) = next(c for c in doc["changes"] if c["address"] == "member.db.pg")["attributes"]
    assert attr == {"name": "image_id", "before": short(old), "after": "3f2a9c1e",
                    "forces_replacement": True}


def test_an_owner_image_that_moved_replaces_the_group(tmp_path):
    spec = _load(tmp_path, BASE_SPEC)
    obs = converged(spec)
    obs = attrs.evolve(obs, images={**obs.images, "pause:3.10": "sha256:" + "9" * 64})
    assert _actions(make_plan(spec, obs)) == {
        "owner.db": Action.REPLACE, "member.db.pg": Action.REPLACE, "owner.edge": Action.REPLACE,
        "member.edge.app": Action.REPLACE, "member.edge.web": Action.REPLACE,
        "helper.edge": Action.CREATE}


def test_an_unresolvable_reference_is_not_a_change(tmp_path):
    spec = _load(tmp_path, BASE_SPEC)
    obs = converged(spec)
    assert make_plan(spec, attrs.evolve(obs, images={})).summary.empty


def test_pull_policies_per_image(tmp_path):
    text = BASE_SPEC.replace('image = "postgres:16"\n', 'image = "postgres:16"\npull_policy = "never"\n')
    text = text.replace('image = "nginx:1.27"\n', 'image = "nginx:1.27"\npull_policy = "always"\n')
    policies = pull_policies(_load(tmp_path, text))
    assert policies["postgres:16"] == "never" and policies["nginx:1.27"] == "always"
    assert policies["pause:3.10"] == policies["busybox:1.36"] == policies["app:1"] == "missing"


@pytest.mark.parametrize("extra", [{"security_opt": ["systempaths=unconfined"]},
                                   {"security_opt": ["systempaths:unconfined"]},
                                   {"cap_add": ["SYS_ADMIN"]}, {"cap_add": ["ALL"]}])
def test_the_engine_adapter_refuses_what_unmasks_proc_sys_again(tmp_path, extra):
    """Validation refuses these; the adapter checks again before it creates a member,
    as it does for host-wide sysctls (an edited plan file skips validation)."""
    from stackctl.engine.docker_engine import refuse_unconfined
    from stackctl.errors import EngineError

    r = next(r for r in _load(tmp_path, BASE_SPEC) if r.address == "member.db.pg")
    refuse_unconfined(r)
    with pytest.raises(EngineError, match="refusing"):
        refuse_unconfined(attrs.evolve(r, config={**r.config, **extra}))
