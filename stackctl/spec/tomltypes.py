"""How an operator calls the type of a parsed TOML value, for error messages."""

from __future__ import annotations

import datetime
from typing import Any


def toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, as an operator would call it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return "a date or time"
    return type(value).__name__
