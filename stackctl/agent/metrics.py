"""What the agent exposes on ``--listen``: ``/metrics`` (Prometheus text format, written by
the official client library) and ``/healthz`` (JSON: the engine, the loop, every stack).

Each agent has its own registry, not the library's global one, so two agents in one
process (the tests) do not share counters, and the process's own default collectors do
not mix into the stack metrics.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Health: (healthy, document). The agent computes it; the server only serves it.
HealthFn = Callable[[], tuple[bool, dict[str, Any]]]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.converges = Counter("stackctl_converges", "Converges of a stack, by result: "
                                 "noop (nothing to do), applied, failed, invalid (spec "
                                 "errors), locked (another stackctl holds the lock)",
                                 ["stack", "result"], registry=r)
        self.failures = Counter("stackctl_converge_failures", "Converges that failed",
                                ["stack"], registry=r)
        self.drift = Counter("stackctl_drift", "Changes found and applied, by kind (the "
                             "plan's action: create, update, replace, restart, delete)",
                             ["stack", "kind"], registry=r)
        self.heal = Histogram("stackctl_heal_seconds", "From the first engine event about a "
                              "stack to that stack converged again, when the converge "
                              "changed something", ["stack"],
                              buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60),
                              registry=r)
        self.last_success = Gauge("stackctl_last_converge_success_timestamp_seconds",
                                  "When the stack last converged successfully (Unix time)",
                                  ["stack"], registry=r)
        self.in_sync = Gauge("stackctl_in_sync", "1 when the stack's last plan was empty or "
                             "its last converge succeeded, 0 otherwise", ["stack"], registry=r)
        self.engine_up = Gauge("stackctl_engine_up", "1 while the engine's event stream is "
                               "open", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Server:
    """A small threaded HTTP server for /metrics and /healthz."""

    def __init__(self, host: str, port: int, metrics: Metrics, health: HealthFn) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, metrics.exposition())
                elif path == "/healthz":
                    ok, doc = health()
                    self._send(200 if ok else 503, "application/json",
                               (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
                else:
                    self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # scrapes are not events

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="stackctl-http",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
