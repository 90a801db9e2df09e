"""A directory of ``*.toml`` files merges into one stack, and problems name their file."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.errors import SpecError
from stackctl.spec import load


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def _problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(path, env={})
    return [str(p) for p in caught.value.problems]


def test_a_group_split_across_files(tmp_path: Path) -> None:
    _write(tmp_path, {
        "stack.toml": '[stack]\nname = "shop"\n[groups.edge]\nports = ["8080:80"]\n',
        "edge-sysctls.toml": '[groups.edge]\nsysctls = { "net.core.somaxconn" = 1024 }\n',
        "edge-web.toml": '[groups.edge.members.web]\nimage = "nginx:1.27"\n',
        "edge-app.toml": '[groups.edge.members.app]\nimage = "app:1"\ndepends_on = ["web"]\n',
    })
    loaded = load(tmp_path, env={})
    edge = loaded.stack.groups["edge"]
    assert [str(p) for p in edge.ports] == ["8080:80/tcp"]
    assert edge.sysctls == {"net.core.somaxconn": "1024"}
    assert sorted(edge.members) == ["app", "web"]
    assert len(loaded.files) == 4


def test_a_member_defined_twice_names_both_files(tmp_path: Path) -> None:
    _write(tmp_path, {
        "a.toml": '[stack]\nname = "shop"\n[groups.edge.members.web]\nimage = "nginx:1.27"\n',
        "b.toml": '[groups.edge.members.web]\nimage = "nginx:1.28"\n',
    })
    assert _problems(tmp_path) == [
        f"{tmp_path}/b.toml: groups.edge.members.web: member 'web' is also defined in "
        f"{tmp_path}/a.toml (define each member in one file)"]


def test_a_group_setting_defined_twice_names_both_files(tmp_path: Path) -> None:
    _write(tmp_path, {
        "a.toml": '[stack]\nname = "shop"\n[groups.edge]\nports = ["8080:80"]\n',
        "b.toml": '[groups.edge]\nports = ["9090:90"]\n',
    })
    assert _problems(tmp_path) == [
        f"{tmp_path}/b.toml: groups.edge.ports: also defined in {tmp_path}/a.toml "
        "(set each key of a group in one file)"]


def test_exactly_one_stack_table(tmp_path: Path) -> None:
    _write(tmp_path, {"a.toml": '[stack]\nname = "a"\n', "b.toml": '[stack]\nname = "b"\n'})
    assert _problems(tmp_path) == [
        f"{tmp_path}/b.toml: stack: also defined in {tmp_path}/a.toml "
        "(a stack has exactly one [stack] table: keep one)"]


def test_problems_name_the_file_they_are_in(tmp_path: Path) -> None:
    _write(tmp_path, {
        "a.toml": '[stack]\nname = "shop"\n[groups.edge]\nports = ["8080:80"]\n',
        "b.toml": '[groups.edge.members.web]\nimage = "nginx:1.27"\nrestart = "never"\n',
        "c.toml": '[groups.api]\nports = ["8080:81"]\n',
    })
    problems = _problems(tmp_path)
    assert problems[0].startswith(f"{tmp_path}/b.toml: groups.edge.members.web.restart: ")
    assert problems[1] == (
        f"{tmp_path}/c.toml: groups.api.ports[0]: host port 8080/tcp is already bound by "
        f"groups.edge.ports[0] in {tmp_path}/a.toml "
        "(publish each host port once: pick another host port or address)")


def test_only_toml_files_and_not_hidden_ones_or_subdirectories(tmp_path: Path) -> None:
    _write(tmp_path, {"stack.toml": '[stack]\nname = "shop"\n',
                      ".stack.toml": "not toml at all [",
                      "notes.txt": "not toml either ["})
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.toml").write_text("[broken")
    assert load(tmp_path, env={}).files == (str(tmp_path / "stack.toml"),)


def test_syntax_errors_of_every_file_are_reported(tmp_path: Path) -> None:
    _write(tmp_path, {"a.toml": "[stack\n", "b.toml": 'x = [1,\n'})
    problems = _problems(tmp_path)
    # b.toml ends inside the array: "at end of document" is shown as just after its last
    # character.
    assert [p.split(": ")[1] for p in problems] == ["line 1, column 7", "line 1, column 8"]
