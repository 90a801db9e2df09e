"""Whatever a spec holds, validation ends in a valid stack or in SpecError, never a crash.

Documents are mutations of a valid spec: any key set to any TOML value, keys removed,
unknown keys added, so the fuzzing reaches deep into groups and members.
"""

from __future__ import annotations

import datetime
try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the same parser, as a package
    import tomli as tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackctl.errors import SpecError
from stackctl.spec.load import validate_documents
from stackctl.spec.model import Stack

BASE = tomllib.loads((Path(__file__).parent / "good" / "every-key.toml").read_text())
KEYS = ["stack", "name", "defaults", "groups", "edge", "members", "web", "app", "ports",
        "sysctls", "image", "command", "depends_on", "restart", "init", "environment",
        "volumes", "hostname", "net.core.somaxconn", "vm.swappiness", "kernel.shmmax", "x",
        "Bad Name", "owner_image", "helper_image", "owner_command", "entrypoint"]
TEXT = st.one_of(
    st.sampled_from(["8080:80", "80", "1:2:3", "[::1]:1:1", "${X}", "${X:-1}", "$$", "${",
                     "nginx:1.27", "", " ", "1024 65000", "01024", "/a:/b:ro", "app", "web",
                     "on-failure", "net.core.somaxconn", "a=b"]),
    st.text(max_size=12))
SCALARS = st.one_of(TEXT, st.integers(-2**63, 2**63 - 1), st.booleans(),
                    st.floats(allow_nan=False), st.just(datetime.date(2024, 1, 1)))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, path + (i,))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    import copy

    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 6))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "set":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(VALUES)
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=mutated(), env=st.dictionaries(st.sampled_from(["X", "Y"]), st.text(max_size=5)))
def test_validation_never_crashes(doc: dict[str, Any], env: dict[str, str]) -> None:
    try:
        stack = validate_documents([("a.toml", doc)], env)
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == "a.toml"
            assert problem.message and problem.hint, problem
    else:
        assert isinstance(stack, Stack)


@settings(max_examples=150, deadline=None)
@given(a=mutated(), b=mutated())
def test_merging_never_crashes(a: dict[str, Any], b: dict[str, Any]) -> None:
    try:
        validate_documents([("a.toml", a), ("b.toml", b)], {})
    except SpecError as exc:
        assert all(p.file in ("a.toml", "b.toml") for p in exc.problems)
