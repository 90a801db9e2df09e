"""The agent's pure parts: durations, log lines, stack discovery, spec fingerprints, and
the scheduling rules (debounce, backoff) on an agent with no engine."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stackctl.agent import Agent, Options, parse_duration
from stackctl.agent.agent import StackState
from stackctl.agent.log import Log
from stackctl.agent.sources import discover, fingerprint


@pytest.mark.parametrize("text, seconds", [("60", 60), ("30s", 30), ("5m", 300), ("1h", 3600),
                                           ("1.5s", 1.5), ("250ms", 0.25)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "5 m", "-3s", "1d", "m"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_log_lines_text_and_json():
    lines: list[str] = []
    Log(lines.append, "json")("change", "shop", address="member.web.x", action="restart",
                              reason="attached to a dead namespace", seconds=0.12345)
    doc = json.loads(lines[0])
    assert doc["stack"] == "shop" and doc["event"] == "change" and doc["seconds"] == 0.123
    assert doc["time"].endswith("Z") and "commit" not in doc
    Log(lines.append, "text")("change", "shop", address="member.web.x", action="restart",
                              reason="two words")
    assert lines[1].split(" ", 1)[1] == ('change stack=shop address=member.web.x action=restart '
                                         'reason="two words"')


def test_discover_stacks_and_repos(tmp_path: Path):
    (tmp_path / "repo" / "a").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "s.toml").write_text("")
    (tmp_path / "repo" / "notes").mkdir()
    (tmp_path / "one.toml").write_text("")
    (tmp_path / "empty").mkdir()
    found = discover((str(tmp_path / "repo"), str(tmp_path / "one.toml"), str(tmp_path / "empty")))
    assert found == [(tmp_path / "repo" / "a").resolve(), (tmp_path / "one.toml").resolve()]


def test_fingerprint_sees_edits_and_env_files(tmp_path: Path):
    (tmp_path / "s.toml").write_text("a")
    first = fingerprint(tmp_path)
    (tmp_path / "web.env").write_text("X=1")
    second = fingerprint(tmp_path)
    assert second != first
    (tmp_path / ".s.toml.swp").write_text("editor")
    assert fingerprint(tmp_path) == second, "hidden files are not part of the stack"
    assert fingerprint(tmp_path / "gone") == ()


def _agent() -> Agent:
    return Agent(Options(paths=(".",), debounce=0.3, debounce_max=1.0), Log(lambda _: None))


def test_events_are_debounced_but_never_longer_than_the_cap():
    agent, st = _agent(), StackState(path=Path("x"))
    agent._schedule(st, "event", event=True)
    first_due = st.due
    assert first_due is not None and st.first_trigger is not None
    # Events keep arriving: each pushes the converge back, but not past first + 1 s.
    st.first_trigger -= 0.9
    agent._schedule(st, "event", event=True)
    assert st.due is not None and st.due <= st.first_trigger + 1.0 + 1e-6
    assert st.reason == "event"


def test_a_failing_stack_is_not_retried_early_by_events_but_is_by_a_spec_edit():
    agent, st = _agent(), StackState(path=Path("x"))
    st.failures = 3
    st.due = time.monotonic() + 4
    agent._schedule(st, "engine event: x die", event=True)
    assert st.due > time.monotonic() + 3, "the backoff holds"
    agent._schedule(st, "spec changed on disk")
    assert st.due <= time.monotonic(), "an edit is tried at once"


def test_triggers_during_a_converge_ask_for_one_more():
    agent, st = _agent(), StackState(path=Path("x"), running=True)
    agent._schedule(st, "engine event: x start", event=True)
    assert st.again and st.due is None and st.event_since is not None


def test_after_a_failure_the_retry_waits_out_the_backoff_even_with_events_meanwhile():
    agent, st = _agent(), StackState(path=Path("x"), running=True)
    now = 1000.0
    waits = []
    for failures in range(1, 12):
        st.running, st.failures = True, failures
        st.retry = ("retry after failure", agent._backoff(st))
        agent._schedule(st, "engine event: x die", event=True)  # arrives mid-converge
        agent._settle(st, now)
        assert not st.running and not st.again
        waits.append(st.due - now)
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_a_locked_stack_is_tried_again_after_the_lock_wait():
    agent, st = _agent(), StackState(path=Path("x"), running=True)
    st.retry = ("retry: locked", agent.o.lock_retry)
    agent._settle(st, 50.0)
    assert st.due == 50.0 + agent.o.lock_retry


def test_without_a_retry_an_event_during_the_converge_asks_for_one_more_after_it():
    agent, st = _agent(), StackState(path=Path("x"), running=True)
    agent._schedule(st, "engine event: x start", event=True)
    agent._settle(st, time.monotonic())
    assert st.due is not None and st.due <= time.monotonic() + agent.o.debounce
