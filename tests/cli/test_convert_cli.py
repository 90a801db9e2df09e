"""`stackctl convert` as an operator runs it: the spec on stdout (or in -o PATH), what was
not converted on stderr, exit 1 with one message per problem and nothing written when the
output would be wrong. No engine is involved: DOCKER_HOST points nowhere."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from support import ROOT, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

# PYTHONPATH: some tests run from the Compose project's directory, as an operator would,
# and must still run this checkout's stackctl.
NO_ENGINE = {"DOCKER_HOST": "tcp://127.0.0.1:1", "PYTHONPATH": str(ROOT)}

COMPOSE = """
    services:
      vpn:
        image: vpn:1
        cap_add: [NET_ADMIN]
        ports: ["8080:80"]
        env_file: vpn.env
      web:
        image: web:1
        network_mode: service:vpn
        container_name: web
"""


def project(tmp_path: Path, text: str = COMPOSE, name: str = "Media") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "compose.yaml").write_text(textwrap.dedent(text))
    (d / "vpn.env").write_text("KEY=1\n")
    return d / "compose.yaml"


def test_prints_the_spec_and_lists_what_was_not_converted(tmp_path):
    compose = project(tmp_path)
    result = run_cli("convert", str(compose), cwd=compose.parent, env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    doc = tomllib.loads(result.stdout)
    assert doc["stack"]["name"] == "media"
    assert list(doc["groups"]["vpn"]["members"]) == ["vpn", "web"]
    assert doc["groups"]["vpn"]["members"]["vpn"]["env_file"] == ["./vpn.env"]
    warnings = [l for l in result.stderr.splitlines() if l.startswith("Warning: ")]
    assert warnings == [f"Warning: {compose}: services.web.container_name: not converted: "
                        "stackctl names containers STACK-GROUP-MEMBER itself"]
    assert result.stderr.splitlines()[-1] == (
        "Converted 2 Compose service(s) into 1 group(s) of stack 'media', 1 thing(s) not "
        "converted (listed above).")
    # what stdout holds is a spec stackctl accepts, from where it was meant to be saved
    (compose.parent / "stack.toml").write_text(result.stdout)
    assert run_cli("validate", str(compose.parent / "stack.toml"), env=NO_ENGINE).returncode == 0


def test_output_directory_gets_a_stack_toml_with_paths_that_still_resolve(tmp_path):
    compose = project(tmp_path)
    out = tmp_path / "specs" / "media"
    result = run_cli("convert", str(compose), "--stack", "tv", "-o", str(out), env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    spec = out / "stack.toml"
    doc = tomllib.loads(spec.read_text())
    assert doc["stack"]["name"] == "tv"
    env_file = doc["groups"]["vpn"]["members"]["vpn"]["env_file"][0]
    assert env_file == "../../Media/vpn.env"
    assert (out / env_file).resolve() == (compose.parent / "vpn.env").resolve()
    assert f"wrote {spec}" in result.stderr
    validated = run_cli("validate", str(out), env=NO_ENGINE)
    assert validated.returncode == 0, validated.stderr
    # A second run does not overwrite the spec (or merge a second one into the directory).
    again = run_cli("convert", str(compose), "-o", str(out), env=NO_ENGINE)
    assert again.returncode == 1
    assert f"Error: {spec}: the file exists already" in again.stderr
    assert tomllib.loads(spec.read_text())["stack"]["name"] == "tv"


def test_same_input_same_bytes(tmp_path):
    compose = project(tmp_path)
    first = run_cli("convert", str(compose), cwd=tmp_path, env=NO_ENGINE)
    second = run_cli("convert", str(compose), cwd=tmp_path, env=NO_ENGINE)
    assert first.returncode == 0 and first.stdout == second.stdout


def test_build_without_image_exits_1_and_prints_nothing(tmp_path):
    compose = project(tmp_path, """
        services:
          api:
            build: ./api
          web:
            image: web:1
    """)
    result = run_cli("convert", str(compose), env=NO_ENGINE)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == (
        f"Error: {compose}: services.api: service 'api' has build but no image "
        "(stackctl runs images and does not build them: build and tag it (docker compose "
        "build), then add image: NAME:TAG)")


def test_every_problem_at_once(tmp_path):
    compose = project(tmp_path, """
        services:
          api: {build: .}
          web: {image: "web:1", network_mode: "service:nope", cpus: "${CPUS}"}
    """)
    result = run_cli("convert", str(compose), "-o", str(tmp_path / "out"), env=NO_ENGINE)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: ") and len(lines) == 3, result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_file_and_bad_yaml(tmp_path):
    result = run_cli("convert", str(tmp_path / "nope.yml"), env=NO_ENGINE)
    assert result.returncode == 1
    assert result.stderr == f"Error: {tmp_path / 'nope.yml'}: cannot read the file: No such " \
                            "file or directory (check that it exists and that you may read it)\n"
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  web: {image: [\n")
    result = run_cli("convert", str(bad), env=NO_ENGINE)
    assert result.returncode == 1 and "invalid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_needs_a_compose_file():
    result = run_cli("convert", env=NO_ENGINE)
    assert result.returncode == 1
    assert "the following arguments are required: COMPOSE_FILE" in result.stderr


def test_output_to_a_toml_file_and_refusing_a_directory_with_specs(tmp_path):
    compose = project(tmp_path)
    target = tmp_path / "deploy" / "media.toml"
    result = run_cli("convert", str(compose), "-o", str(target), env=NO_ENGINE)
    assert result.returncode == 0, result.stderr
    assert tomllib.loads(target.read_text())["groups"]["vpn"]["members"]["vpn"]["env_file"] \
        == ["../Media/vpn.env"]
    # a directory that holds a spec already would merge it with the new one
    result = run_cli("convert", str(compose), "-o", str(target.parent), env=NO_ENGINE)
    assert result.returncode == 1
    assert "the directory holds spec files already (media.toml)" in result.stderr
    assert not (target.parent / "stack.toml").exists()
