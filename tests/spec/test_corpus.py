"""The corpus of bad specs, checked through the CLI as an operator would meet them.

Each case is ``bad/NAME.toml`` (or a directory ``bad/NAME/`` of files that merge into one
stack) with ``bad/NAME.expected`` holding the exact problem lines stackctl must print, in
order, and optionally ``bad/NAME.env`` holding ``KEY=VALUE`` lines to set in the
environment. The CLI runs with ``bad/`` as its working directory, so the file names in
the messages are the short relative ones of the expected files. No engine is needed: a
spec is checked before anything connects to one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT, run_cli

BAD = Path(__file__).resolve().parent / "bad"
SPECS = ROOT / "specs"
NO_ENGINE = "tcp://127.0.0.1:1"  # nothing listens there: any connection attempt fails


def _cases() -> list[str]:
    return sorted(p.name[: -len(".expected")] for p in BAD.glob("*.expected"))


def _target(name: str) -> str:
    return name if (BAD / name).is_dir() else f"{name}.toml"


def _env(name: str) -> dict[str, str]:
    """The case's variables; every other STACKCTL_TEST_* variable is unset."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKCTL_TEST_")}
    env_file = BAD / f"{name}.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = value
    env["NO_COLOR"] = "1"
    env["DOCKER_HOST"] = NO_ENGINE
    # The CLI runs in bad/: put this checkout first, not whatever stackctl is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _problem_lines(stderr: str) -> list[str]:
    """The CLI prints ``Error: FIRST`` then each further problem indented by two spaces."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("Error: "), stderr
    return [lines[0][len("Error: "):]] + [line[2:] if line.startswith("  ") else line
                                          for line in lines[1:]]


def _run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Like ``support.run_cli``, but with exactly the case's environment (unset means unset)."""
    return subprocess.run([sys.executable, "-m", "stackctl", *args], cwd=BAD, env=_env(name),
                          input="", capture_output=True, text=True, timeout=120)


def test_the_corpus_is_large_enough() -> None:
    assert len(_cases()) >= 35
    for name in _cases():
        assert (BAD / _target(name)).exists(), f"{name}.expected has no spec next to it"


@pytest.mark.parametrize("name", _cases())
def test_bad_spec_is_reported_exactly(name: str) -> None:
    result = _run(name, "validate", _target(name))
    expected = (BAD / f"{name}.expected").read_text().splitlines()
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert _problem_lines(result.stderr) == expected


@pytest.mark.parametrize("name", _cases())
def test_every_message_reads_file_path_what_and_how(name: str) -> None:
    """``FILE: KEY.PATH: what is wrong (how to fix)``: every line names a file of the
    case and ends in one hint, which has no parentheses of its own (no "(... (...))")."""
    target = _target(name)
    for line in (BAD / f"{name}.expected").read_text().splitlines():
        file = line.split(": ", 1)[0]
        assert file == target or file.startswith(target + "/"), line
        assert re.fullmatch(r"[^:]+: .+ \([^()]+\)", line), line
        what = line[: line.rindex(" (")]
        assert not what.endswith(")"), line


@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"],
                                     ["destroy", "--auto-approve"]])
def test_commands_that_change_things_validate_first(command: list[str]) -> None:
    """A bad spec fails before any engine is contacted (DOCKER_HOST points nowhere), with
    the same message as ``validate``."""
    name = "many-problems-at-once"
    result = _run(name, *command, _target(name))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert _problem_lines(result.stderr) == (BAD / f"{name}.expected").read_text().splitlines()


def _good_specs() -> list[Path]:
    found = [p for p in SPECS.iterdir() if p.is_dir() and any(p.glob("*.toml"))]
    return sorted(found + list(SPECS.glob("*.toml")))


@pytest.mark.parametrize("spec", _good_specs(), ids=lambda p: p.name)
def test_the_example_specs_validate(spec: Path) -> None:
    result = run_cli("validate", str(spec.relative_to(ROOT)), cwd=ROOT,
                     env={"DOCKER_HOST": NO_ENGINE})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Success!"), result.stdout
    assert result.stderr == ""


GOOD = Path(__file__).resolve().parent / "good"


@pytest.mark.parametrize("spec", sorted(p.name for p in GOOD.iterdir()
                                         if p.is_dir() or p.suffix == ".toml"))
def test_the_good_corpus_validates_with_an_empty_environment(spec: str) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1",
           "DOCKER_HOST": NO_ENGINE, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "stackctl", "validate", spec], cwd=GOOD,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
