"""The agent's settings, and the duration syntax of ``--interval`` ("60", "30s", "5m")."""

from __future__ import annotations

import re
from typing import Optional

import attrs

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number of seconds, or a number with ms, s, m or h."""
    m = _DURATION.fullmatch(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"expected a duration such as 60, 30s, 5m or 1h, got {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


@attrs.frozen
class Options:
    paths: tuple[str, ...]
    interval: float = 60.0  # full re-plan of every stack (and git fetch with --git)
    git: bool = False
    prune: bool = False
    listen: Optional[tuple[str, int]] = None
    parallelism: int = 4  # stacks converged at once
    step_parallelism: int = 10  # operations at once within one stack's apply
    debounce: float = 0.3  # engine events for one stack closer than this are one trigger
    debounce_max: float = 1.0  # ... but a stream of events waits at most this long
    poll: float = 1.0  # how often spec files on disk are checked for changes
    backoff_min: float = 1.0
    backoff_max: float = 300.0
    lock_retry: float = 2.0  # a stack locked by someone else is tried again this often
