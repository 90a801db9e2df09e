"""The JSON Schema of the spec format agrees with the model and with the validator."""

from __future__ import annotations

import json
import subprocess
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the same parser, as a package
    import tomli as tomllib
from pathlib import Path

import attrs
import pytest

from stackctl.spec import model
from stackctl.spec.schema import OVERRIDES, json_schema
from support import ROOT

jsonschema = pytest.importorskip("jsonschema")

HERE = Path(__file__).resolve().parent
VALID_FILES = sorted([*ROOT.glob("specs/**/*.toml"), *HERE.glob("good/**/*.toml")])


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator, doc: dict) -> list[str]:
    return [e.message for e in validator.iter_errors(doc)]


def test_it_is_a_draft_2020_12_schema(validator) -> None:
    assert json_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_valid_spec_file_passes(validator, path: Path) -> None:
    assert _errors(validator, tomllib.loads(path.read_text())) == []


@pytest.mark.parametrize("doc", [
    {"stack": {"name": "Shop"}},
    {"stack": {"name": "shop", "nmae": "x"}},
    {"stack": {}},
    {"groups": {"Edge": {}}},
    {"groups": {"edge": {"ports": ["99999:80"]}}},
    {"groups": {"edge": {"ports": ["8080"]}}},
    {"groups": {"edge": {"ports": [8080]}}},
    {"groups": {"edge": {"sysctls": {"vm.swappiness": 10}}}},
    {"groups": {"edge": {"sysctls": {"net.core.somaxconn": True}}}},
    {"groups": {"edge": {"mac_address": "02:42:ac:11:00:02"}}},
    {"groups": {"edge": {"members": {"web": {}}}}},
    {"groups": {"edge": {"members": {"web": {"image": "x", "hostname": "web"}}}}},
    {"groups": {"edge": {"members": {"web": {"image": "x", "ports": ["8080:80"]}}}}},
    {"groups": {"edge": {"members": {"web": {"image": "x", "restart": "sometimes"}}}}},
    {"groups": {"edge": {"members": {"web": {"image": "x", "command": "sleep 1"}}}}},
    {"groups": {"edge": {"members": {"web": {"image": "x", "init": "yes"}}}}},
])
def test_bad_specs_fail(validator, doc: dict) -> None:
    assert _errors(validator, doc)


@pytest.mark.parametrize("cl", [model.Stack, model.StackInfo, model.Defaults, model.Group,
                                model.Member], ids=lambda c: c.__name__)
def test_every_model_field_is_in_the_schema_with_its_description(cl: type) -> None:
    schema = json_schema()
    node = schema if cl is model.Stack else schema["$defs"][cl.__name__]
    assert node["additionalProperties"] is False
    for field in attrs.fields(cl):
        assert node["properties"][field.name]["description"] == field.metadata["description"]


def test_group_only_keys_are_refused_on_members_with_the_reason() -> None:
    member = json_schema()["$defs"]["Member"]["properties"]
    for key in model.GROUP_ONLY_KEYS:
        assert member[key]["not"] == {}
        assert member[key]["description"].startswith("Belongs to the group")


def test_defaults_and_enums_come_from_the_model() -> None:
    member = json_schema()["$defs"]["Member"]["properties"]
    assert member["restart"]["default"] == "no"
    assert member["restart"]["anyOf"][0]["enum"] == list(model.RESTART_POLICIES)
    assert member["init"]["default"] is False
    assert json_schema()["$defs"]["Defaults"]["properties"]["owner_image"]["default"] == \
        model.DEFAULT_OWNER_IMAGE


def test_overrides_name_real_fields() -> None:
    for cl, name in OVERRIDES:
        assert name in attrs.fields_dict(cl), f"{cl.__name__}.{name}"


def test_stackctl_schema_prints_it_offline() -> None:
    result = subprocess.run([sys.executable, "-m", "stackctl", "schema"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json_schema()
