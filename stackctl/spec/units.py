"""Sizes and durations as Compose writes them, parsed to the engine's integers.

Shared by every key that takes one (``mem_limit``, ``shm_size``, ``tmpfs`` sizes;
``stop_grace_period``, healthcheck timings), so they all accept the same spellings and
report the same errors.
"""

from __future__ import annotations

import re

# Compose's sizes (docker/go-units RAMInBytes): a number, an optional binary unit.
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
SIZE_HINT = 'write a number of bytes, or one with a unit b, k, m or g, e.g. "256m"'

# Go's time.ParseDuration, as Compose reads durations: "1m30s", "500ms", "2h".
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1, "us": 10 ** 3, "µs": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9,
                   "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}
DURATION_HINT = 'write a duration with units, e.g. "30s", "1m30s" or "500ms"'


class UnitError(ValueError):
    """A size or duration that cannot be read; the message names the value."""


def parse_size(text: str) -> int:
    """``"256m"`` -> 268435456; a bare number is bytes. Raises :class:`UnitError`."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise UnitError(f"{text!r} is not a size")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def parse_duration(text: str) -> int:
    """``"1m30s"`` -> 90_000_000_000 nanoseconds. Raises :class:`UnitError`."""
    text = text.strip()
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise UnitError(f"{text!r} is not a duration")
    return int(total)
