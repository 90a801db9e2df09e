"""docs/spec.md documents every key the model has, and its examples are valid."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from stackctl.spec import load, model
from support import ROOT

DOC = (ROOT / "docs" / "spec.md").read_text()


@pytest.mark.parametrize("cl", [model.StackInfo, model.Defaults, model.Group, model.Member,
                                model.Network, model.Volume],
                         ids=lambda c: c.__name__)
def test_every_key_has_a_row_in_the_reference(cl: type) -> None:
    for field in attrs.fields(cl):
        assert re.search(rf"^\| `{field.name}` \|", DOC, re.M), f"{cl.__name__}.{field.name}"


def test_every_refused_key_is_documented() -> None:
    for key in [*model.GROUP_ONLY_KEYS, *model.GROUP_UNSUPPORTED_KEYS]:
        assert f"`{key}`" in DOC, key


def test_restart_policies_and_defaults_match_the_model() -> None:
    for policy in model.RESTART_POLICIES:
        assert f'`"{policy}"`' in DOC
    assert f'`"{model.DEFAULT_OWNER_IMAGE}"`' in DOC
    assert f'`"{model.DEFAULT_HELPER_IMAGE}"`' in DOC


def test_the_complete_example_is_valid(tmp_path: Path) -> None:
    example = DOC.split("```toml\n", 1)[1].split("```", 1)[0]
    spec = tmp_path / "stack.toml"
    spec.write_text(example)
    stack = load(spec, env={}).stack
    assert stack.groups["edge"].members["web"].init is True
