"""Sizes and durations read as Compose (go-units, Go's ParseDuration) reads them."""

from __future__ import annotations

import pytest

from stackctl.spec.units import UnitError, parse_duration, parse_size


@pytest.mark.parametrize("text,expected", [
    ("1000", 1000), ("256m", 256 * 1024 ** 2), ("256M", 256 * 1024 ** 2),
    ("64mb", 64 * 1024 ** 2), ("1.5g", int(1.5 * 1024 ** 3)), ("4k", 4096), ("10b", 10),
])
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "m", "1x", "-1m", "1 m s", "1e3"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UnitError):
        parse_size(text)


@pytest.mark.parametrize("text,expected", [
    ("0", 0), ("30s", 30 * 10 ** 9), ("1m30s", 90 * 10 ** 9), ("500ms", 5 * 10 ** 8),
    ("2h", 7200 * 10 ** 9), ("1.5s", 15 * 10 ** 8),
])
def test_durations(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "1s2", "-1s", "1 s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UnitError):
        parse_duration(text)
