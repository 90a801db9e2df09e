"""One log record per event, as text or as a JSON line, handed to the writer the CLI gives.

Fields: time, stack, event, address, action, reason, seconds (and, when they apply,
commit and error). Empty fields are left out. Secrets never reach here: reasons come from
plans, which show sensitive values as ``(sensitive)``.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Optional

_ORDER = ("time", "stack", "event", "address", "action", "reason", "seconds", "commit", "error")


class Log:
    def __init__(self, write: Callable[[str], None], fmt: str = "text") -> None:
        if fmt not in ("text", "json"):
            raise ValueError(f"log format is text or json, not {fmt!r}")
        self.write, self.fmt = write, fmt
        self._lock = threading.Lock()

    def __call__(self, event: str, stack: str = "", *, address: str = "", action: str = "",
                 reason: str = "", seconds: Optional[float] = None, **extra: Any) -> None:
        record: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "stack": stack, "event": event, "address": address, "action": action,
            "reason": reason, "seconds": round(seconds, 3) if seconds is not None else None,
            **extra}
        record = {k: v for k, v in record.items() if v not in ("", None)}
        if self.fmt == "json":
            line = json.dumps(record, sort_keys=False)
        else:
            keys = [k for k in _ORDER if k in record] + sorted(set(record) - set(_ORDER))
            parts = [record["time"], record["event"]]
            for k in keys:
                if k in ("time", "event"):
                    continue
                v = str(record[k])
                parts.append(f"{k}={json.dumps(v) if (' ' in v or not v or chr(10) in v) else v}")
            line = " ".join(parts)
        with self._lock:
            self.write(line)
