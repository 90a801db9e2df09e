"""Whatever shape a Compose file has, convert answers with a spec that validates or with
ConvertError naming the problems: never a traceback. Values of every type are thrown at
every key convert reads."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from stackctl.convert import ConvertError, convert_files
from stackctl.convert.compose import convert
from stackctl.convert.compose_files import read_project
from stackctl.convert.member_keys import MEMBER_ORDER, NOT_SUPPORTED
from stackctl.convert.namespace_keys import GROUP_KEYS

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000),
                    st.sampled_from(["", "x", "80", "8080:80", "a=b", "/data", "db", "1m",
                                     "service:db", "${V}", "$$", "0.5", "vpn:/x:ro"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["a", "db", "target", "published", "source", "soft",
                                     "hard", "condition", "driver", "options", "test",
                                     "limits", "resources", "memory", "config", "subnet",
                                     "external", "name", "x-y", "type"]), inner, max_size=3)),
    max_leaves=8)
SERVICE_KEYS = sorted({*MEMBER_ORDER, *GROUP_KEYS, *NOT_SUPPORTED, "network_mode", "deploy",
                       "depends_on", "extends"})
services = st.dictionaries(st.sampled_from(["db", "web", "vpn"]), st.one_of(
    values, st.dictionaries(st.sampled_from(SERVICE_KEYS), values, max_size=6).map(
        lambda s: {"image": "img:1", **s})), min_size=1, max_size=3)
projects = st.fixed_dictionaries({"services": services}, optional={
    "networks": st.one_of(values, st.dictionaries(st.sampled_from(["back", "default"]),
                                                  values, max_size=2)),
    "volumes": st.one_of(values, st.dictionaries(st.sampled_from(["data", "x"]), values,
                                                 max_size=2)),
    "name": values, "secrets": values})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(project=projects)
def test_any_shape_gives_a_spec_or_convert_errors(tmp_path: Path, project: dict) -> None:
    compose = tmp_path / "proj" / "compose.yaml"
    compose.parent.mkdir(exist_ok=True)
    compose.write_text(yaml.safe_dump(project))
    try:
        result = convert_files([str(compose)], tmp_path / "out" / "stack.toml", "app")
    except ConvertError as exc:
        assert exc.problems and all(p.file and p.message for p in exc.problems)
    else:
        assert result.text.startswith("# Converted by `stackctl convert`")
