"""A tiny read-only Docker registry (distribution API v2) for the tests, on 127.0.0.1.

No registry is reachable from these machines, yet pulls, pull policies and digest
references deserve a test against the real engine. This serves images taken from the
local engine with ``docker save`` (config and layers, the layers gzipped), as schema-2
manifests. The engine treats 127.0.0.0/8 registries as insecure by default, so it pulls
over plain HTTP without any daemon configuration. GET and HEAD only; nothing is pushed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """``serve(client, local_image, "repo:tag")`` publishes an image; ``host`` is
    ``127.0.0.1:PORT``. Use as a context manager."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}  # (repo, tag or digest) -> body
        self.requests: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                registry.requests.append(f"{self.command} {self.path}")
                path = self.path.split("?")[0]
                data, kind = None, "application/octet-stream"
                if path in ("/v2/", "/v2"):
                    data, kind = b"{}", "application/json"
                elif "/manifests/" in path:
                    repo, _, ref = path[len("/v2/"):].partition("/manifests/")
                    data, kind = registry.manifests.get((repo, ref)), MANIFEST
                elif "/blobs/" in path:
                    data = registry.blobs.get(path.rsplit("/", 1)[1])
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Content-Digest", _digest(data))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Registry":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, client: Any, image: str, name: str) -> str:
        """Publish local ``image`` as ``name`` (``repo:tag``); returns the manifest digest."""
        repo, _, tag = name.partition(":")
        saved = tarfile.open(fileobj=io.BytesIO(b"".join(client.images.get(image).save())))
        index = json.load(saved.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = saved.extractfile(index["Config"]).read()  # type: ignore[union-attr]
        layers = []
        for layer in index["Layers"]:
            blob = gzip.compress(saved.extractfile(layer).read(), mtime=0)  # type: ignore[union-attr]
            self.blobs[_digest(blob)] = blob
            layers.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                           "size": len(blob), "digest": _digest(blob)})
        self.blobs[_digest(config)] = config
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(config), "digest": _digest(config)},
            "layers": layers}).encode()
        digest = _digest(manifest)
        self.manifests[(repo, tag or "latest")] = manifest
        self.manifests[(repo, digest)] = manifest
        return digest
