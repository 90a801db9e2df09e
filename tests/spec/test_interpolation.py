"""``${VAR}`` and Compose's other forms in string values, taken from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.errors import SpecError
from stackctl.spec import load
from stackctl.spec.load import interpolate

SPEC = """
[stack]
name = "${STACK:-shop}"

[groups.edge]
ports = ["${BIND:-127.0.0.1}:${PORT}:80"]
sysctls = { "net.core.somaxconn" = "${SOMAXCONN:-1024}" }

[groups.edge.members.web]
image = "${REGISTRY:-docker.io}/library/nginx:${TAG:-1.27}"
command = ["sh", "-c", "echo $$HOME $HOME"]
environment = { "${KEY}" = "${VALUE:-x}" }
"""


def _load(tmp_path: Path, env: dict[str, str], text: str = SPEC):
    spec = tmp_path / "stack.toml"
    spec.write_text(text)
    return load(spec, env=env).stack


def test_variables_and_defaults(tmp_path: Path) -> None:
    stack = _load(tmp_path, {"PORT": "8080", "TAG": "1.28", "STACK": "shop-eu"})
    group = stack.groups["edge"]
    assert stack.name == "shop-eu"
    assert str(group.ports[0]) == "127.0.0.1:8080:80/tcp"
    assert group.sysctls == {"net.core.somaxconn": "1024"}
    assert group.members["web"].image == "docker.io/library/nginx:1.28"


def test_one_spec_serves_several_hosts(tmp_path: Path) -> None:
    a = _load(tmp_path, {"PORT": "8080", "BIND": "10.0.0.1"})
    b = _load(tmp_path, {"PORT": "9090", "BIND": "10.0.0.2"})
    assert str(a.groups["edge"].ports[0]) == "10.0.0.1:8080:80/tcp"
    assert str(b.groups["edge"].ports[0]) == "10.0.0.2:9090:80/tcp"


def test_dollar_dollar_is_a_literal_dollar_and_a_bare_dollar_is_kept(tmp_path: Path) -> None:
    web = _load(tmp_path, {"PORT": "8080", "HOME": "/root"}).groups["edge"].members["web"]
    assert web.command == ("sh", "-c", "echo $HOME $HOME")


def test_keys_are_not_interpolated(tmp_path: Path) -> None:
    web = _load(tmp_path, {"PORT": "8080", "KEY": "SECRET"}).groups["edge"].members["web"]
    assert web.environment == {"${KEY}": "x"}


def test_an_empty_variable_takes_the_default_like_a_shell(tmp_path: Path) -> None:
    stack = _load(tmp_path, {"PORT": "8080", "TAG": ""})
    assert stack.groups["edge"].members["web"].image.endswith(":1.27")
    value, problems = interpolate({"a": "[${E}]"}, {"E": ""})
    assert value == {"a": "[]"} and problems == []  # set but empty, no default: empty


def test_an_unset_variable_without_default_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        _load(tmp_path, {})
    (problem,) = caught.value.problems
    assert problem.path == "groups.edge.ports[0]"
    assert problem.message == "environment variable PORT is not set"
    assert problem.hint == "export PORT, or give a default: ${PORT:-value}"


def test_values_are_substituted_once(tmp_path: Path) -> None:
    """A variable's value is not itself interpolated: '${X}' in it stays as it is."""
    value, problems = interpolate(["${A}"], {"A": "${B}", "B": "no"})
    assert value == ["${B}"] and problems == []


@pytest.mark.parametrize("text, message", [
    ("${bad name}", "cannot read variable reference '${bad name}'"),
    ("${}", "cannot read variable reference '${}'"),
    ("${1X}", "cannot read variable reference '${1X}'"),
    ("${X:=assign}", "cannot read variable reference '${X:=assign}'"),
    ("${OPEN", "unterminated variable reference '${OPEN'"),
    ("${A:-${OPEN}", "unterminated variable reference '${A:-${OPEN}'"),
])
def test_malformed_references_are_problems(text: str, message: str) -> None:
    _, problems = interpolate({"k": [text]}, {"X": "1"})
    assert [(p, m) for p, m, _ in problems] == [(("k", 0), message)]


def test_non_strings_are_untouched() -> None:
    value, problems = interpolate({"n": 1, "b": True, "l": [1.5]}, {})
    assert value == {"n": 1, "b": True, "l": [1.5]} and problems == []


@pytest.mark.parametrize("text, env, expected", [
    ("${A:-d}", {}, "d"), ("${A:-d}", {"A": ""}, "d"), ("${A:-d}", {"A": "a"}, "a"),
    ("${A-d}", {}, "d"), ("${A-d}", {"A": ""}, ""), ("${A-d}", {"A": "a"}, "a"),
    ("${A:+alt}", {}, ""), ("${A:+alt}", {"A": ""}, ""), ("${A:+alt}", {"A": "a"}, "alt"),
    ("${A+alt}", {"A": ""}, "alt"), ("${A?}", {"A": ""}, ""), ("${A:?m}", {"A": "a"}, "a"),
    # Nested references are substituted, never kept as text.
    ("${A:-${B}}", {"B": "b"}, "b"), ("${A:-${B:-${C-c}}}/x", {}, "c/x"),
    ("${A:-$${B}}", {}, "${B}"), ("${A:-x}}", {}, "x}"),
])
def test_compose_forms(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate([text], env) == ([expected], [])


@pytest.mark.parametrize("text, env, message", [
    ("${A:?the port to publish}", {}, "environment variable A is not set: the port to publish"),
    ("${A:?}", {"A": ""}, "environment variable A is empty"),
    ("${A?must be set}", {}, "environment variable A is not set: must be set"),
    ("${A:-${B}}", {}, "environment variable B is not set"),
])
def test_required_variables_are_problems_with_their_message(text, env, message) -> None:
    value, problems = interpolate([text], env)
    assert [m for _, m, _ in problems] == [message]


def test_a_default_is_only_substituted_when_used() -> None:
    assert interpolate(["${A:-${B}}"], {"A": "a"}) == (["a"], [])
