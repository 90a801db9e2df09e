"""A read-only Docker Engine API client over a unix socket, on the standard library alone.

Why it exists next to docker-py: importing docker-py (requests, urllib3) costs about
110 ms per command, and its per-request overhead is about 1 ms of CPU under the GIL. A
``stackctl plan`` only ever *reads* (ping, list, inspect; the watch agent also follows
``/events``), so on a local engine it reads
through this module and never imports docker-py; commands that change something import
docker-py when their first action runs. Only GET is offered here, on purpose: every
write goes through the one SDK the product chose.

Paths carry no ``/vX.Y`` prefix, so the engine answers in its own current API version:
the same version docker-py's automatic negotiation would pick.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from typing import Any, Iterator, Mapping, Optional

from stackctl.errors import EngineError, EngineUnavailable


class ApiError(EngineError):
    """The engine answered with an HTTP error; ``status`` is its code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class SocketApi:
    """GET requests to the engine at ``path``; one keep-alive connection per thread."""

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.path = path
        self.timeout = timeout
        self._local = threading.local()
        self._count_lock = threading.Lock()
        self.requests = 0  # how many requests were answered (tests and the benchmark read it)

    def get(self, endpoint: str, params: Optional[Mapping[str, str]] = None) -> Any:
        """The decoded JSON body of ``GET endpoint``; raises ApiError or EngineUnavailable."""
        url = endpoint + ("?" + urllib.parse.urlencode(params) if params else "")
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("GET", url, headers={"Host": "docker"})
                response = conn.getresponse()
                body = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the engine closed while idle: reconnect once.
                self._drop()
                if attempt == 2:
                    raise EngineUnavailable(f"the Docker engine at unix://{self.path} closed "
                                            "the connection") from None
            except OSError as exc:
                self._drop()
                raise self._unavailable(exc) from None
        with self._count_lock:  # four reader threads: += alone could lose a count
            self.requests += 1
        if response.status >= 400:
            try:
                message = json.loads(body).get("message") or ""
            except ValueError:
                message = body.decode(errors="replace").strip()
            raise ApiError(response.status, message or f"HTTP {response.status}")
        if not body:
            return None
        if response.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(body)
        return body.decode(errors="replace")

    def stream(self, endpoint: str, params: Optional[Mapping[str, str]] = None
               ) -> Iterator[dict[str, Any]]:
        """The JSON documents of a streaming ``GET endpoint`` (``/events``), one per line,
        on a connection of its own with no read timeout (the stream is idle for as long as
        nothing happens). The request is sent before this returns, so an unreachable
        engine raises here; the iterator ends when the engine closes the stream (a
        dockerd restart)."""
        url = endpoint + ("?" + urllib.parse.urlencode(params) if params else "")
        conn = _UnixConnection(self.path, timeout=self.timeout)
        try:
            conn.request("GET", url, headers={"Host": "docker"})
            response = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise self._unavailable(exc) from None
        except http.client.HTTPException as exc:
            conn.close()
            raise EngineUnavailable(f"the Docker engine at unix://{self.path} closed the "
                                    f"connection ({type(exc).__name__})") from None
        with self._count_lock:
            self.requests += 1
        if response.status >= 400:
            body = response.read().decode(errors="replace").strip()
            conn.close()
            raise ApiError(response.status, body or f"HTTP {response.status}")
        if conn.sock is not None:
            conn.sock.settimeout(None)
        return self._lines(conn, response)

    @staticmethod
    def _lines(conn: _UnixConnection, response: http.client.HTTPResponse
               ) -> Iterator[dict[str, Any]]:
        try:
            while True:
                try:
                    line = response.readline()
                except (OSError, http.client.HTTPException):
                    return
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    def ping(self) -> None:
        self.get("/_ping")

    def _connection(self) -> _UnixConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _UnixConnection(self.path, self.timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _unavailable(self, exc: OSError) -> EngineUnavailable:
        host = f"unix://{self.path}"
        if isinstance(exc, PermissionError):
            return EngineUnavailable(
                f"permission denied on the Docker socket ({host}): run as root or as a "
                "member of the docker group")
        cause = exc.strerror or str(exc) or type(exc).__name__
        return EngineUnavailable(
            f"cannot reach the Docker engine at {host}: {cause} (start dockerd, or point "
            "DOCKER_HOST at a running engine)")
