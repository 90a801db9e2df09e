"""Sensitive values are shown as ``(sensitive)``, in human and JSON output alike.

An env file's content is a secret: a plan names the file, never its values, nor even the
digest the labels carry (a digest of a short password can be guessed). The renderers pass
every value through :func:`mask` before showing it.
"""

from __future__ import annotations

from typing import Any, Optional

from stackctl.member_config import SENSITIVE

SENSITIVE_VALUE = "(sensitive)"


def mask(name: str, value: Any) -> Any:
    """``value`` of attribute ``name`` as it may be shown."""
    if name not in SENSITIVE or value is None:
        return value
    if isinstance(value, list):
        return [{"path": f.get("path"), "content": SENSITIVE_VALUE} if isinstance(f, dict)
                else SENSITIVE_VALUE for f in value]
    return SENSITIVE_VALUE


def mask_config(config: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """A resource's config with its sensitive attributes masked."""
    if config is None:
        return None
    return {k: mask(k, v) for k, v in config.items()}
