"""A dependency-aware parallel executor (after Compose 1.x's ``parallel_execute``).

Runs one function per node of a DAG with bounded parallelism. A node starts when all of
its predecessors have finished. A node whose *required* predecessor failed (or was
skipped) is skipped, and the skip records the root cause, so a report names what broke
rather than every echo of it. *Ordering-only* edges wait but do not propagate failure.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Generic, Hashable, Iterable, Optional, TypeVar

import attrs

N = TypeVar("N", bound=Hashable)


@attrs.define
class Outcome(Generic[N]):
    done: list[N] = attrs.field(factory=list)
    failed: dict[N, BaseException] = attrs.field(factory=dict)
    skipped: dict[N, N] = attrs.field(factory=dict)  # node -> the failed node that caused it
    cancelled: list[N] = attrs.field(factory=list)


def run_dag(
    nodes: Iterable[N],
    edges: Iterable[tuple[N, N, bool]],
    fn: Callable[[N], None],
    parallelism: int = 10,
    stop: Optional[threading.Event] = None,
) -> Outcome[N]:
    """Run ``fn`` on every node after its predecessors; edges are (before, after, required).

    ``stop`` lets the caller (e.g. on Ctrl-C) stop starting new work; running nodes finish.
    """
    nodes = list(dict.fromkeys(nodes))
    preds: dict[N, dict[N, bool]] = {n: {} for n in nodes}
    for before, after, required in edges:
        if before in preds and after in preds:
            preds[after][before] = preds[after].get(before, False) or required
    succs: dict[N, list[N]] = {n: [] for n in nodes}
    for after, before_map in preds.items():
        for before in before_map:
            succs[before].append(after)
    waiting = {n: len(p) for n, p in preds.items()}
    outcome: Outcome[N] = Outcome()
    root: dict[N, N] = {}  # failed-or-skipped node -> the failed node at the root
    cancelled: set[N] = set()
    ready = [n for n in nodes if waiting[n] == 0]
    running: dict[Future[None], N] = {}

    def settle(node: N) -> None:
        for nxt in succs[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)

    pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
    try:
        while ready or running:
            while ready:
                node = ready.pop(0)
                blocked = [p for p, req in preds[node].items() if req and p in root]
                if blocked:
                    root[node] = root[blocked[0]]
                    outcome.skipped[node] = root[blocked[0]]
                    settle(node)
                elif (stop is not None and stop.is_set()) or any(p in cancelled for p in preds[node]):
                    # Not started because of the stop; that is not a failure to blame.
                    cancelled.add(node)
                    outcome.cancelled.append(node)
                    settle(node)
                elif len(running) < max(1, parallelism):
                    running[pool.submit(fn, node)] = node
                else:
                    ready.insert(0, node)
                    break
            if not running:
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                node = running.pop(fut)
                exc = fut.exception()
                if exc is None:
                    outcome.done.append(node)
                else:
                    outcome.failed[node] = exc
                    root[node] = node
                settle(node)
    except BaseException:
        # An abort (a second Ctrl-C): do not wait for the steps under way, and start none
        # of the queued ones. The caller makes the engine refuse their further writes.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return outcome
