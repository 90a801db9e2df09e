"""Command-line usage errors, without an engine: one message, exit code 1 (never 2, which
`plan --detailed-exitcode` uses for "there are changes"), nothing else attempted."""

from __future__ import annotations

import pytest

from support import run_cli


@pytest.mark.parametrize("args, fragment", [
    (["plan", "--refresh=maybe"], "argument --refresh: expected true, false or full, got 'maybe'"),
    (["apply", "--parallelism", "0"], "expected a whole number of at least 1, got '0'"),
    (["plan", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_usage_errors_exit_1_with_one_message(args, fragment):
    # An engine that cannot answer: a usage error must not get as far as connecting.
    result = run_cli(*args, env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert "see `stackctl" in errors[0]


def test_help_and_version_exit_0():
    assert run_cli("--help").returncode == 0
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("stackctl ")


def _saved_plan(tmp_path, **observe):
    import json

    from stackctl.plan import file as planfile
    from stackctl.plan.model import Plan

    doc = json.loads(planfile.dumps(Plan(stack="shop", changes=(), edges=(), fingerprint="x"),
                                    {}, {}))
    doc["observe"].update(observe)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("observe, fragment", [
    ({"sysctl_keys": ["net.core.somaxconn"]}, "observe.sysctl_keys must map each group"),
    ({"helper_images": {"g": 1}}, "observe.helper_images must map each group"),
])
def test_a_malformed_plan_file_is_one_clean_error(tmp_path, observe, fragment):
    result = run_cli("apply", str(_saved_plan(tmp_path, **observe)),
                     env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot read saved plan" in result.stderr and fragment in result.stderr


@pytest.mark.parametrize("flag", [["--refresh", "false"], ["--refresh=full"], ["--target", "owner.g"],
                                  ["--replace", "owner.g"]])
def test_a_saved_plan_takes_no_plan_options(tmp_path, flag):
    result = run_cli("apply", str(_saved_plan(tmp_path)), *flag,
                     env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert result.returncode == 1, result.stderr
    assert "a saved plan is applied exactly as it was made" in result.stderr
