"""The shape of a Compose model, checked before anything is mapped: which keys hold a
mapping, a list or a scalar, as Compose's JSON Schema has them.

Compose refuses a file whose ``ports`` is a mapping or whose ``healthcheck`` is a string
before it looks at any value; convert does the same, so the mapping steps can rely on the
types they read and every such mistake is reported with its key path (never a traceback).
Only the keys convert reads are checked: the others are reported as not converted anyway.
"""

from __future__ import annotations

from typing import Any, Union

KeyPath = tuple[Union[str, int], ...]

S = (str, int, float)  # a scalar (bool is an int)
_MAP, _LIST = (dict,), (list,)

# Patterns: '*' stands for a name the user chose, '[]' for any list element.
_NAMED = {"services", "networks", "volumes", "services.*.depends_on", "services.*.networks",
          "services.*.ulimits", "services.*.environment", "services.*.labels",
          "services.*.sysctls", "services.*.extra_hosts", "services.*.logging.options",
          "networks.*.driver_opts", "volumes.*.driver_opts", "networks.*.labels",
          "volumes.*.labels"}

_SHAPES: dict[str, tuple[type, ...]] = {
    "services": _MAP, "networks": _MAP, "volumes": _MAP, "name": S,
    "services.*": _MAP,
    "services.*.image": S, "services.*.network_mode": S, "services.*.restart": S,
    "services.*.init": S, "services.*.user": S, "services.*.working_dir": S,
    "services.*.read_only": S, "services.*.mem_limit": S, "services.*.cpus": S,
    "services.*.pids_limit": S, "services.*.stop_signal": S,
    "services.*.stop_grace_period": S, "services.*.pull_policy": S,
    "services.*.hostname": S, "services.*.shm_size": S, "services.*.container_name": S,
    "services.*.command": (str, list), "services.*.entrypoint": (str, list),
    "services.*.env_file": (str, list), "services.*.tmpfs": (str, list),
    "services.*.dns": (str, list), "services.*.dns_search": (str, list),
    "services.*.environment": (list, dict), "services.*.labels": (list, dict),
    "services.*.sysctls": (list, dict), "services.*.extra_hosts": (list, dict),
    "services.*.depends_on": (list, dict), "services.*.networks": (list, dict),
    "services.*.volumes": _LIST, "services.*.ports": _LIST, "services.*.devices": _LIST,
    "services.*.cap_add": _LIST, "services.*.cap_drop": _LIST,
    "services.*.security_opt": _LIST, "services.*.dns_opt": _LIST,
    "services.*.ulimits": _MAP, "services.*.healthcheck": _MAP, "services.*.logging": _MAP,
    "services.*.deploy": _MAP, "services.*.build": (str, dict),
    **{f"services.*.{k}[]": S for k in (
        "command", "entrypoint", "tmpfs", "dns", "dns_search", "dns_opt", "cap_add",
        "cap_drop", "security_opt", "environment", "labels", "sysctls", "extra_hosts",
        "networks", "depends_on")},
    "services.*.env_file[]": (str, dict), "services.*.volumes[]": (str, dict),
    "services.*.devices[]": (str, dict), "services.*.ports[]": (*S, dict),
    "services.*.env_file[].path": S, "services.*.env_file[].format": S,
    "services.*.environment.*": S, "services.*.labels.*": S, "services.*.sysctls.*": S,
    "services.*.extra_hosts.*": (*S, list), "services.*.extra_hosts.*[]": S,
    "services.*.depends_on.*": _MAP, "services.*.depends_on.*.condition": S,
    "services.*.networks.*": _MAP,
    "services.*.ulimits.*": (*S, dict), "services.*.ulimits.*.soft": S,
    "services.*.ulimits.*.hard": S,
    "services.*.healthcheck.test": (str, list), "services.*.healthcheck.test[]": S,
    **{f"services.*.healthcheck.{k}": S for k in (
        "interval", "timeout", "retries", "start_period", "start_interval", "disable")},
    "services.*.logging.driver": S, "services.*.logging.options": _MAP,
    "services.*.logging.options.*": S,
    "services.*.deploy.resources": _MAP, "services.*.deploy.resources.limits": _MAP,
    **{f"services.*.deploy.resources.limits.{k}": S for k in ("memory", "cpus", "pids")},
    "services.*.deploy.restart_policy": _MAP, "services.*.deploy.restart_policy.condition": S,
    **{f"services.*.ports[].{k}": S for k in (
        "target", "published", "host_ip", "protocol", "mode", "name", "app_protocol")},
    **{f"services.*.volumes[].{k}": S for k in (
        "type", "source", "target", "read_only", "consistency")},
    "services.*.volumes[].bind": _MAP, "services.*.volumes[].volume": _MAP,
    "services.*.volumes[].tmpfs": _MAP,
    **{f"services.*.volumes[].{k}.{j}": S for k, j in (
        ("bind", "propagation"), ("bind", "selinux"), ("volume", "nocopy"),
        ("volume", "subpath"), ("tmpfs", "size"), ("tmpfs", "mode"))},
    **{f"services.*.devices[].{k}": S for k in ("source", "target", "permissions")},
    "networks.*": _MAP, "volumes.*": _MAP,
    **{f"{t}.*.{k}": S for t in ("networks", "volumes") for k in ("name", "driver")},
    "networks.*.internal": S, "networks.*.external": (*S, dict),
    "volumes.*.external": (*S, dict), "networks.*.external.name": S,
    "volumes.*.external.name": S, "networks.*.driver_opts": _MAP,
    "volumes.*.driver_opts": _MAP, "networks.*.driver_opts.*": S,
    "volumes.*.driver_opts.*": S, "networks.*.labels": (list, dict),
    "volumes.*.labels": (list, dict), "volumes.*.labels.*": S, "volumes.*.labels[]": S,
    "networks.*.ipam": _MAP, "networks.*.ipam.config": _LIST,
    "networks.*.ipam.config[]": _MAP, "networks.*.ipam.config[].subnet": S,
}


def _describe(types: tuple[type, ...]) -> str:
    names = []
    for t in types:
        name = {dict: "a mapping", list: "a list", str: "text", int: "a number",
                float: "a number"}[t]
        if name not in names:
            names.append(name)
    return " or ".join(names)


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, (int, float)) else type(value).__name__


def shape_problems(model: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key path, message)`` for every value of the wrong kind, in document order."""
    out: list[tuple[str, str]] = []

    def walk(value: Any, pattern: str, path: str) -> None:
        expected = _SHAPES.get(pattern)
        if value is None:
            return
        if expected is not None and not isinstance(value, expected):
            out.append((path, f"expected {_describe(expected)}, got {_got(value)}"))
            return
        if isinstance(value, dict):
            for key, item in value.items():
                key = str(key)
                if key.startswith("x-") and pattern not in _NAMED:
                    continue
                sub = "*" if pattern in _NAMED else key
                walk(item, f"{pattern}.{sub}" if pattern else sub,
                     f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{pattern}[]", f"{path}[{i}]")

    walk(model, "", "")
    return out
