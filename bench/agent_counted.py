#!/usr/bin/env python3
"""`stackctl watch` with its engine requests and started processes counted (for bench/watch.py).

    python bench/agent_counted.py COUNTS_FILE watch PATH... [options]

Installs bench/run.py's counters (every request through the stdlib socket client and
through docker-py, every process started), runs the CLI's main() in this process, and
rewrites COUNTS_FILE once a second with the running totals, so the benchmark can take
the difference over any window. The streaming /events request is counted when opened.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: engine_requests, spawned_processes)

from stackctl.cli import main  # noqa: E402
from stackctl.engine.socket_api import SocketApi  # noqa: E402


def _main() -> int:
    out = Path(sys.argv[1])
    by_endpoint: Counter[str] = Counter()
    processes = [0]
    lock = threading.Lock()

    def request(transport: str, endpoint: str, seconds: float) -> None:
        with lock:
            by_endpoint[f"{transport} {endpoint}"] += 1

    def spawned(program: str) -> None:
        with lock:
            processes[0] += 1

    orig_stream = SocketApi.stream

    def stream(self, endpoint, params=None):  # type: ignore[no-untyped-def]
        request("socket", run._endpoint("GET", endpoint) + " (stream)", 0.0)
        return orig_stream(self, endpoint, params)

    SocketApi.stream = stream  # type: ignore[method-assign]

    def writer() -> None:
        while True:
            with lock:
                doc = {"by_endpoint": dict(by_endpoint), "processes": processes[0]}
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            tmp.replace(out)
            time.sleep(1)

    with run.engine_requests(request), run.spawned_processes(spawned):
        threading.Thread(target=writer, daemon=True).start()
        return main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(_main())
