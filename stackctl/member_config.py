"""A member's spec -> the normalized attributes its container is created from.

The result is what a member's ``stackctl.config`` label records and its hash covers, so
it is written once here and read by the planner (diff), the engine adapter (create and
``docker update``) and the renderers. Normalization makes two spellings of one setting
equal (``"CAP_NET_ADMIN"`` and ``"net_admin"``, ``"1m30s"`` and ``"90s"``, ``"1g"`` and
``"1024m"``), so rewording a spec is never a replacement.

Options left at their default are left out of the config, so containers created before
an option existed keep their hash: upgrading stackctl replaces nothing.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from stackctl.spec.model import Healthcheck, Member
from stackctl.spec.options import capability
from stackctl.spec.units import parse_duration, parse_size

# Member attributes ``docker update`` changes on a running container: no restart, same
# id and start time. Everything else a member declares is fixed at creation.
IN_PLACE = ("mem_limit", "cpus", "pids_limit", "restart")
# Of those, the ones Docker cannot take away again in place (an update with 0 means
# "unchanged" to the engine, measured on Docker 20.10): removing them replaces.
NOT_REMOVABLE_IN_PLACE = ("mem_limit", "cpus")
# Attributes whose values are secret: plans show them as "(sensitive)".
SENSITIVE = ("env_file",)


def signal_name(name: str) -> str:
    """``"quit"`` -> ``"SIGQUIT"``; a number stays a number."""
    upper = name.strip().upper()
    if upper.isdigit() or upper.startswith("SIG"):
        return upper
    return "SIG" + upper


def healthcheck(h: Healthcheck) -> dict[str, Any]:
    """The check as Docker's HealthConfig wants it (durations in nanoseconds)."""
    if h.disable:
        return {"test": ["NONE"]}
    out: dict[str, Any] = {}
    if h.test is not None:
        out["test"] = list(h.test)
    for key in ("interval", "timeout", "start_period", "start_interval"):
        text = getattr(h, key)
        if text is not None:
            out[key] = parse_duration(text)
    if h.retries is not None:
        out["retries"] = h.retries
    return out


def pids(limit: Optional[int]) -> Optional[int]:
    """-1 and 0 mean unlimited to Docker, as does leaving the key out."""
    return limit if limit is not None and limit > 0 else None


def member_config(m: Member, env_files: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The diffed attributes of a member; ``env_files`` are (path as written, digest)."""
    config: dict[str, Any] = {
        "image": m.image,
        "command": list(m.command) if m.command is not None else None,
        "entrypoint": list(m.entrypoint) if m.entrypoint is not None else None,
        "environment": dict(sorted(m.environment.items())),
        "volumes": list(m.volumes),
        "restart": m.restart,
        "init": m.init,
    }
    optional: dict[str, Any] = {
        "env_file": [{"path": p, "content": d} for p, d in env_files],
        "user": m.user,
        "working_dir": m.working_dir,
        "read_only": m.read_only or None,
        "tmpfs": sorted(set(m.tmpfs)),
        "cap_add": sorted({capability(c) for c in m.cap_add}),
        "cap_drop": sorted({capability(c) for c in m.cap_drop}),
        "devices": sorted(set(m.devices)),
        "ulimits": {k: {"soft": u.soft, "hard": u.hard} for k, u in sorted(m.ulimits.items())},
        "mem_limit": parse_size(m.mem_limit) if m.mem_limit is not None else None,
        "cpus": round(m.cpus, 9) if m.cpus is not None else None,
        "pids_limit": pids(m.pids_limit),
        "labels": dict(sorted(m.labels.items())),
        "stop_signal": signal_name(m.stop_signal) if m.stop_signal else None,
        # Docker keeps whole seconds (StopTimeout), as Compose converts it.
        "stop_grace_period": (parse_duration(m.stop_grace_period) // 10 ** 9
                              if m.stop_grace_period is not None else None),
        "healthcheck": healthcheck(m.healthcheck) if m.healthcheck is not None else None,
        "logging": ({"driver": m.logging.driver, "options": dict(sorted(m.logging.options.items()))}
                    if m.logging is not None else None),
        "security_opt": list(m.security_opt),
    }
    config.update({k: v for k, v in optional.items() if v not in (None, [], {})})
    return config
