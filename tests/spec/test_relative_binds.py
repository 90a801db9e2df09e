"""Relative bind sources resolve against the directory of the file that declares the
member, as in Compose, and named volume sources become the stack's engine volume names."""

from __future__ import annotations

from pathlib import Path

from stackctl.resources import Role, desired
from stackctl.spec import load


def test_relative_bind_resolves_against_the_declaring_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "stack.toml").write_text('[stack]\nname = "shop"\n[volumes.data]\n')
    (tmp_path / "web.toml").write_text(
        '[groups.edge.members.web]\nimage = "nginx:1.27"\n'
        'volumes = ["./www:/usr/share/nginx/html:ro", "../shared:/shared", ".:/spec", '
        '"/abs:/abs", "data:/data"]\n')
    stack = load(tmp_path, env={}).stack
    assert stack.groups["edge"].members["web"].volumes == (
        f"{tmp_path}/www:/usr/share/nginx/html:ro", f"{tmp_path.parent}/shared:/shared",
        f"{tmp_path}:/spec", "/abs:/abs", "data:/data")
    web = next(r for r in desired(stack) if r.role is Role.MEMBER)
    # The named volume is mounted by its engine name, and the member waits for it.
    assert web.config["volumes"][-1] == "shop-data:/data"
    assert "volume.data" in web.depends_on


def test_a_spec_loaded_through_a_relative_path_gets_absolute_sources(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "stack.toml").write_text(
        '[stack]\nname = "shop"\n[groups.g.members.m]\nimage = "app"\nvolumes = ["./w:/w"]\n')
    monkeypatch.chdir(tmp_path)
    stack = load("s/stack.toml", env={}).stack
    assert stack.groups["g"].members["m"].volumes == (f"{tmp_path}/s/w:/w",)


def test_external_volume_is_mounted_by_its_name_and_not_managed(tmp_path: Path) -> None:
    (tmp_path / "stack.toml").write_text(
        '[stack]\nname = "shop"\n[volumes.old]\nexternal = true\nname = "legacy-data"\n'
        '[groups.g.members.m]\nimage = "app"\nvolumes = ["old:/data"]\n')
    want = desired(load(tmp_path / "stack.toml", env={}).stack)
    assert not [r for r in want if r.role is Role.VOLUME]
    m = next(r for r in want if r.role is Role.MEMBER)
    assert m.config["volumes"] == ["legacy-data:/data"]
    assert m.extra["external_volumes"] == ["legacy-data"]
