"""`stackctl export kubernetes` as an operator runs it: manifests on stdout or in -o FILE,
the kubelet flag, the Secrets to create and the warnings on stderr, exit codes. Every run
points DOCKER_HOST at a port where nothing listens: the export must not need an engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support import ROOT, run_cli

NO_ENGINE = {"DOCKER_HOST": "tcp://127.0.0.1:1"}
EVERYTHING = ROOT / "tests" / "export" / "stacks" / "everything"
BAD = ROOT / "tests" / "spec" / "bad"


def _export(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return run_cli("export", "kubernetes", *args, cwd=cwd, env={**NO_ENGINE, **(env or {})})


def test_stdout_is_the_manifests_and_stderr_the_notes() -> None:
    result = _export("specs/shop")
    assert result.returncode == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("PersistentVolumeClaim", "data"), ("Deployment", "db"), ("Deployment", "edge"),
        ("Service", "edge")]
    assert all("namespace" not in o["metadata"] for o in objects)
    err = result.stderr.splitlines()
    assert "  --allowed-unsafe-sysctls=kernel.sem,kernel.shmmax,net.core.somaxconn" in err
    assert any(line.startswith("Warning: groups.edge.ports: host ports do not carry over")
               for line in err), result.stderr
    assert "Traceback" not in result.stderr


def test_output_file_and_namespace(tmp_path: Path) -> None:
    target = tmp_path / "shop.yaml"
    result = _export("specs/shop", "-o", str(target), "--namespace", "shop-prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"Wrote 4 object(s) of stack 'shop' to {target}." in result.stderr
    to_stdout = _export("specs/shop", "--namespace", "shop-prod").stdout
    assert target.read_text() == to_stdout
    objects = [d for d in yaml.safe_load_all(to_stdout) if d]
    assert {o["metadata"]["namespace"] for o in objects} == {"shop-prod"}


def test_same_spec_same_bytes_across_processes() -> None:
    """Hash randomisation differs between processes; the output must not."""
    a = _export(str(EVERYTHING), env={"PYTHONHASHSEED": "1"})
    b = _export(str(EVERYTHING), env={"PYTHONHASHSEED": "2"})
    assert a.returncode == b.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stderr == b.stderr


def test_env_file_secrets_are_referenced_never_printed() -> None:
    result = _export(str(EVERYTHING.relative_to(ROOT)), "--namespace", "shop")
    assert result.returncode == 0, result.stderr
    for value in ("do-not-print-me", "also-secret"):
        assert value not in result.stdout + result.stderr
    line = ("Create first: kubectl create secret generic edge-web-env-1 --namespace shop "
            "--from-env-file=tests/export/stacks/everything/web.env")
    assert line in result.stderr.splitlines()


def test_a_bad_spec_is_the_usual_validation_error() -> None:
    # Run from bad/ as the corpus does (short file names); this worktree's stackctl.
    result = _export("ports-syntax.toml", cwd=BAD, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    expected = (BAD / "ports-syntax.expected").read_text().splitlines()
    assert lines[0] == "Error: " + expected[0]
    assert [line[2:] for line in lines[1:]] == expected[1:]


@pytest.mark.parametrize("args, fragment", [
    (["specs/hello", "--namespace", "Prod_1"], "--namespace 'Prod_1' is not a valid namespace name"),
    (["specs/no-such-stack"], "no such file or directory"),
    (["specs/hello", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["specs/hello", "-o", "/no/such/dir/k8s.yaml"], "cannot write /no/such/dir/k8s.yaml: No such file"),
])
def test_errors_exit_1_with_one_message(args: list[str], fragment: str) -> None:
    result = _export(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr


def test_export_needs_a_known_format() -> None:
    for args in ([], ["helm"]):
        result = run_cli("export", *args, env=NO_ENGINE)
        assert result.returncode == 1
        assert "Error: stackctl export:" in result.stderr
