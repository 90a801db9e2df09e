"""Helpers shared by the tests (imported as ``support``; tests/ is on sys.path)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = "stackctl-local/busybox:1.35"
PAUSE = "stackctl-local/pause:3.10"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m stackctl`` as an operator would; never with a terminal."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "stackctl", *args], cwd=cwd, env=full_env,
                          input=stdin if stdin is not None else "", capture_output=True,
                          text=True, timeout=300)
