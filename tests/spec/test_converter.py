"""The converter is strict: no type is guessed, no string split, no key ignored."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from stackctl.errors import SpecError
from stackctl.spec import converter as conv
from stackctl.spec import load, model
from stackctl.spec.rules import check

HEAD = '[stack]\nname = "shop"\n'


def _load(tmp_path: Path, text: str) -> model.Stack:
    spec = tmp_path / "stack.toml"
    spec.write_text(HEAD + text)
    return load(spec, env={}).stack


def _problems(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    with pytest.raises(SpecError) as caught:
        _load(tmp_path, text)
    return [(p.path, p.message, p.hint) for p in caught.value.problems]


def test_a_string_is_never_split_into_characters(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[groups.g.members.m]\nimage = "x"\ncommand = "sleep 1"\n'
                                   'depends_on = "ab"\n')
    assert problems == [
        ("groups.g.members.m.command", "expected an array, got a string",
         'for example: command = ["nginx", "-g", "daemon off;"]'),
        ("groups.g.members.m.depends_on", "expected an array, got a string",
         'for example: depends_on = ["app"]'),
    ]


@pytest.mark.parametrize("line, message", [
    ('ports = [8080]', "expected a port string, got an integer"),
    ('members = { m = { image = "x", init = 1 } }', "expected a boolean, got an integer"),
    ('members = { m = { image = "x", init = "true" } }', "expected a boolean, got a string"),
    ('members = { m = { image = 80 } }', "expected a string, got an integer"),
    ('owner_image = ["x"]', "expected a string, got an array"),
    ('members = { m = { image = "x", volumes = ["/a:/b", 1] } }',
     "expected a string, got an integer"),
    ('sysctls = { "net.core.somaxconn" = 1.0 }', "expected an integer or a string, got a float"),
])
def test_no_type_is_guessed(tmp_path: Path, line: str, message: str) -> None:
    problems = _problems(tmp_path, f"[groups.g]\n{line}\n")
    assert [m for _, m, _ in problems] == [message]


def test_values_are_converted_only_where_documented(tmp_path: Path) -> None:
    stack = _load(tmp_path, '[groups.g]\nsysctls = { "net.core.somaxconn" = 1024, '
                            '"net.ipv4.ip_local_port_range" = "1024\t65000" }\n'
                            '[groups.g.members.m]\nimage = "x"\n'
                            'environment = { A = 4, B = true, C = 1.5, D = "d" }\n')
    group = stack.groups["g"]
    assert group.sysctls == {"net.core.somaxconn": "1024",
                             "net.ipv4.ip_local_port_range": "1024 65000"}
    assert group.members["m"].environment == {"A": "4", "B": "true", "C": "1.5", "D": "d"}


def test_defaults_when_keys_are_left_out(tmp_path: Path) -> None:
    stack = _load(tmp_path, '[groups.g.members.m]\nimage = "x"\n')
    member = stack.groups["g"].members["m"]
    assert (member.command, member.entrypoint, member.restart, member.init) == (None, None, "no", False)
    assert stack.defaults == model.Defaults()
    assert stack.owner_image(stack.groups["g"]) == model.DEFAULT_OWNER_IMAGE
    empty = _load(tmp_path, '[groups.g.members.m]\nimage = "x"\ncommand = []\n')
    assert empty.groups["g"].members["m"].command == ()  # [] is not the same as left out


def test_unknown_keys_suggest_the_closest(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[groups.g.members.m]\nimage = "x"\nrestrat = "no"\nzzz = 1\n')
    assert problems[0] == ("groups.g.members.m.restrat", "unknown key", "did you mean 'restart'?")
    assert problems[1][2].startswith("valid keys here: image, command, entrypoint")


def test_member_init_exists(tmp_path: Path) -> None:
    """Docker's --init is a member setting."""
    stack = _load(tmp_path, '[groups.g.members.m]\nimage = "x"\ninit = true\n')
    assert stack.groups["g"].members["m"].init is True


def test_a_type_error_does_not_hide_the_rest(tmp_path: Path) -> None:
    """Structuring sets the bad value aside and the rules still run on everything else."""
    problems = _problems(tmp_path, '[groups.g]\nports = ["8080:80", 1, "8080:81"]\n'
                                   '[groups.g.members.a]\nimage = 5\ndepends_on = ["b"]\n'
                                   '[groups.g.members.b]\nimage = "x"\ndepends_on = ["a"]\n')
    assert [p for p, _, _ in problems] == [
        "groups.g.ports[1]",
        "groups.g.ports[2]",  # its index as written, though [1] was set aside
        "groups.g.members.a.image",
        "groups.g.members.a.depends_on[0]",  # the cycle: a stayed a member
    ]


def test_explain_reraises_what_is_not_a_spec_problem() -> None:
    with pytest.raises(RuntimeError):
        list(conv.explain(RuntimeError("a bug")))


def test_toml_rendering_of_examples() -> None:
    assert conv.toml_value({"net.core.somaxconn": 1024, "TZ": "UTC"}) == \
        '{ "net.core.somaxconn" = 1024, TZ = "UTC" }'
    assert conv.toml_value([True, "a\"b"]) == '[true, "a\\"b"]'
    assert conv.format_path(("groups", "edge", "sysctls", "net.x", 0)) == \
        'groups.edge.sysctls."net.x"[0]'


def _models() -> list[type]:
    return [model.Stack, model.StackInfo, model.Defaults, model.Group, model.Member]


@pytest.mark.parametrize("cl", _models(), ids=lambda c: c.__name__)
def test_every_field_has_a_description_and_an_example(cl: type) -> None:
    for field in attrs.fields(cl):
        assert field.metadata.get("description"), f"{cl.__name__}.{field.name}"
        assert "example" in field.metadata, f"{cl.__name__}.{field.name}"


def test_the_examples_themselves_are_valid() -> None:
    """The hints quote the examples, so each one must pass validation."""
    def examples(cl: type) -> dict:
        return {f.name: f.metadata["example"] for f in attrs.fields(cl)}

    group = examples(model.Group)
    group["members"] = {"web": examples(model.Member), "app": {"image": "app:1"}}
    stack_examples = examples(model.Stack)
    doc = {"stack": examples(model.StackInfo), "defaults": examples(model.Defaults),
           "networks": stack_examples["networks"], "volumes": stack_examples["volumes"],
           "groups": {"edge": group, **{g: {} for g in group["depends_on"]}}}
    stack = conv.structure(doc)
    assert check(stack) == []
