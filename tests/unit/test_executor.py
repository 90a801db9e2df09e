"""stackctl.executor.run_dag: ordering, bounded parallelism, failure and stop semantics."""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest

from stackctl.executor import run_dag


class Recorder:
    """Thread-safe record of when each node started and finished (a global sequence)."""

    def __init__(self, fail: frozenset[str] = frozenset(), sleep: float = 0.0, seed: int = 0) -> None:
        self.lock = threading.Lock()
        self.seq = itertools.count()
        self.start: dict[str, int] = {}
        self.finish: dict[str, int] = {}
        self.fail = fail
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.active = 0
        self.max_active = 0
        self.calls: list[str] = []

    def __call__(self, node: str) -> None:
        with self.lock:
            self.start[node] = next(self.seq)
            self.calls.append(node)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            pause = self.rng.uniform(0, self.sleep) if self.sleep else 0.0
        try:
            if pause:
                time.sleep(pause)
            if node in self.fail:
                raise RuntimeError(f"{node} broke")
        finally:
            with self.lock:
                self.active -= 1
                self.finish[node] = next(self.seq)


def test_empty() -> None:
    out = run_dag([], [], lambda n: None)
    assert (out.done, out.failed, out.skipped, out.cancelled) == ([], {}, {}, [])


@pytest.mark.parametrize("parallelism", [1, 2, 4, 16])
@pytest.mark.parametrize("seed", range(3))
def test_respects_ordering(parallelism: int, seed: int) -> None:
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(25)]
    # A random DAG: edges only go from a lower to a higher index.
    edges = [(nodes[i], nodes[j], rng.random() < 0.5)
             for i in range(len(nodes)) for j in range(i + 1, len(nodes)) if rng.random() < 0.12]
    shuffled = nodes[:]
    rng.shuffle(shuffled)
    rec = Recorder(sleep=0.004, seed=seed)
    out = run_dag(shuffled, edges, rec, parallelism=parallelism)
    assert sorted(out.done) == sorted(nodes)
    assert not out.failed and not out.skipped and not out.cancelled
    for a, b, _ in edges:
        assert rec.finish[a] < rec.start[b], (a, b)
    assert rec.max_active <= parallelism


def test_diamond_order() -> None:
    rec = Recorder(sleep=0.01)
    edges = [("owner", "helper", True), ("helper", "a", True), ("helper", "b", True),
             ("a", "c", True), ("b", "c", False)]
    out = run_dag(["c", "b", "a", "helper", "owner"], edges, rec, parallelism=4)
    assert out.done[0] == "owner" and out.done[1] == "helper" and out.done[-1] == "c"
    assert rec.finish["a"] < rec.start["c"] and rec.finish["b"] < rec.start["c"]


@pytest.mark.parametrize("parallelism", [1, 2, 3, 5])
def test_bounded_parallelism(parallelism: int) -> None:
    rec = Recorder(sleep=0.02)
    out = run_dag([f"n{i}" for i in range(30)], [], rec, parallelism=parallelism)
    assert len(out.done) == 30
    assert rec.max_active <= parallelism
    if parallelism > 1:
        assert rec.max_active >= 2  # independent nodes do run side by side
    else:
        assert rec.max_active == 1


def test_parallelism_below_one_still_runs() -> None:
    rec = Recorder()
    out = run_dag(["a", "b"], [("a", "b", True)], rec, parallelism=0)
    assert out.done == ["a", "b"] and rec.max_active == 1


def test_failure_skips_only_required_descendants_with_root_cause() -> None:
    rec = Recorder(fail=frozenset({"a"}), sleep=0.002)
    edges = [
        ("a", "b", True),    # b needs a
        ("b", "c", True),    # c needs b: skipped, root cause a (not b)
        ("a", "d", False),   # d only runs after a: runs anyway
        ("d", "e", True),    # e needs d, which ran: runs
        ("c", "f", False),   # f only waits for skipped c: runs
        ("x", "y", True),    # an unrelated branch: runs
    ]
    out = run_dag(["a", "b", "c", "d", "e", "f", "x", "y"], edges, rec, parallelism=3)
    assert set(out.failed) == {"a"}
    assert isinstance(out.failed["a"], RuntimeError) and str(out.failed["a"]) == "a broke"
    assert out.skipped == {"b": "a", "c": "a"}
    assert sorted(out.done) == ["d", "e", "f", "x", "y"]
    assert set(rec.calls) == {"a", "d", "e", "f", "x", "y"}  # skipped nodes never ran
    assert rec.finish["a"] < rec.start["d"]  # the ordering edge still orders
    assert rec.finish["a"] < rec.start["f"]
    assert not out.cancelled


def test_skip_names_the_failed_predecessor_among_several() -> None:
    rec = Recorder(fail=frozenset({"bad"}))
    out = run_dag(["ok", "bad", "z"], [("ok", "z", True), ("bad", "z", True)], rec, parallelism=2)
    assert out.skipped == {"z": "bad"}
    assert out.done == ["ok"]


def test_ordering_only_edges_never_propagate_failure() -> None:
    rec = Recorder(fail=frozenset({"a", "b"}))
    edges = [("a", "b", False), ("b", "c", False), ("a", "c", False)]
    out = run_dag(["a", "b", "c"], edges, rec, parallelism=2)
    assert set(out.failed) == {"a", "b"}
    assert out.done == ["c"] and not out.skipped
    assert rec.finish["a"] < rec.start["b"] < rec.finish["b"] < rec.start["c"]


def test_required_wins_when_an_edge_is_given_both_ways() -> None:
    rec = Recorder(fail=frozenset({"a"}))
    out = run_dag(["a", "b"], [("a", "b", False), ("a", "b", True)], rec, parallelism=2)
    assert out.skipped == {"b": "a"}


def test_duplicate_edges_do_not_release_a_node_early() -> None:
    """An edge listed twice must not count twice: ``c`` waits for both ``a`` and ``b``."""
    b_done = threading.Event()
    started_early: list[bool] = []

    def fn(node: str) -> None:
        if node == "b":
            time.sleep(0.2)
            b_done.set()
        if node == "c":
            started_early.append(not b_done.is_set())

    edges = [("a", "c", True), ("a", "c", True), ("b", "c", True)]
    out = run_dag(["a", "b", "c"], edges, fn, parallelism=3)
    assert sorted(out.done) == ["a", "b", "c"]
    assert started_early == [False], "c started before its predecessor b finished"


def test_edges_to_unknown_nodes_are_ignored() -> None:
    rec = Recorder()
    out = run_dag(["a", "b"], [("ghost", "a", True), ("b", "ghost", True), ("a", "b", True)], rec)
    assert out.done == ["a", "b"]


def test_nodes_are_deduplicated() -> None:
    rec = Recorder()
    out = run_dag(["a", "a", "b"], [("a", "b", True)], rec)
    assert out.done == ["a", "b"] and rec.calls == ["a", "b"]


def test_stop_cancels_nodes_not_yet_started() -> None:
    stop = threading.Event()
    rec = Recorder()

    def fn(node: str) -> None:
        rec(node)
        if node == "a":
            stop.set()

    # parallelism 1: a runs first (it is listed first), then nothing else may start.
    out = run_dag(["a", "x", "y", "b"], [("a", "b", True)], fn, parallelism=1, stop=stop)
    assert rec.calls == ["a"]
    assert out.done == ["a"]
    assert sorted(out.cancelled) == ["b", "x", "y"]
    assert not out.failed and not out.skipped


def test_stop_lets_running_nodes_finish() -> None:
    stop = threading.Event()
    started = threading.Event()
    rec = Recorder()

    def fn(node: str) -> None:
        rec(node)
        if node == "slow":
            started.set()
            time.sleep(0.1)

    def stopper() -> None:
        started.wait(2)
        stop.set()

    t = threading.Thread(target=stopper)
    t.start()
    out = run_dag(["slow", "next"], [("slow", "next", True)], fn, parallelism=2, stop=stop)
    t.join()
    assert out.done == ["slow"]
    assert out.cancelled == ["next"]


def test_stop_set_before_start_runs_nothing() -> None:
    stop = threading.Event()
    stop.set()
    rec = Recorder()
    out = run_dag(["a", "b", "c"], [("a", "b", False)], rec, stop=stop)
    assert rec.calls == []
    assert sorted(out.cancelled) == ["a", "b", "c"]


def test_stop_cancels_a_chain_without_calling_it_a_failure() -> None:
    """After a stop, the nodes after a cancelled node were not started either: they are
    cancelled, not "skipped because a dependency failed" (nothing failed)."""
    stop = threading.Event()
    rec = Recorder()

    def fn(node: str) -> None:
        rec(node)
        stop.set()

    out = run_dag(["a", "b", "c"], [("a", "b", True), ("b", "c", True)], fn, parallelism=1, stop=stop)
    assert rec.calls == ["a"]
    assert not out.failed
    assert sorted(out.cancelled) == ["b", "c"]
    assert out.skipped == {}
