"""Which sysctls a kubelet accepts by default, and the flag the others need.

Every namespaced sysctl a group may declare can be set on a pod
(``spec.securityContext.sysctls``), but the kubelet admits only its *safe* set unless its
``--allowed-unsafe-sysctls`` flag names the others; a pod asking for one it does not allow
is refused with ``SysctlForbidden``. The export refuses nothing the spec accepts: it lists
the exact flag value the stack needs instead.

The safe set is the kubelet's (``pkg/kubelet/sysctl/safe_sysctls.go``) as of
:data:`KUBERNETES_VERSION`, with the release that added each name and the kernel the
kubelet requires for it (on an older kernel the kubelet drops it from its safe set).
Sources: kubernetes/kubernetes #118846, #121240 (1.29), #127489 (1.32), #138389 (1.37),
and kubernetes.io "Using sysctls in a Kubernetes Cluster".
"""

from __future__ import annotations

from typing import Iterable, Optional

import attrs

KUBERNETES_VERSION = "1.37"


@attrs.frozen
class SafeSysctl:
    name: str
    since: str  # Kubernetes release that added it to the safe set ("" = from the start)
    kernel: str = ""  # the kubelet treats it as safe only on this kernel or newer


SAFE_SYSCTLS: dict[str, SafeSysctl] = {s.name: s for s in (
    SafeSysctl("kernel.shm_rmid_forced", ""),
    SafeSysctl("net.ipv4.ip_local_port_range", ""),
    SafeSysctl("net.ipv4.tcp_syncookies", ""),
    SafeSysctl("net.ipv4.ping_group_range", "1.18"),
    SafeSysctl("net.ipv4.ip_unprivileged_port_start", "1.22"),
    SafeSysctl("net.ipv4.ip_local_reserved_ports", "1.27", "3.16"),
    SafeSysctl("net.ipv4.tcp_keepalive_time", "1.29", "4.5"),
    SafeSysctl("net.ipv4.tcp_fin_timeout", "1.29", "4.6"),
    SafeSysctl("net.ipv4.tcp_keepalive_intvl", "1.29", "4.5"),
    SafeSysctl("net.ipv4.tcp_keepalive_probes", "1.29", "4.5"),
    SafeSysctl("net.ipv4.tcp_rmem", "1.32", "4.15"),
    SafeSysctl("net.ipv4.tcp_wmem", "1.32", "4.15"),
    SafeSysctl("net.ipv4.tcp_slow_start_after_idle", "1.37", "4.15"),
    SafeSysctl("net.ipv4.tcp_notsent_lowat", "1.37", "4.6"),
)}

# Releases before this one are out of upstream support; a name safe since then needs no note.
_NOTE_AFTER = "1.29"


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def unsafe(names: Iterable[str]) -> list[str]:
    """The names outside the kubelet's safe set, sorted: what the flag must allow."""
    return sorted({n for n in names if n not in SAFE_SYSCTLS})


def kubelet_flag(names: Iterable[str]) -> Optional[str]:
    """``--allowed-unsafe-sysctls=a,b`` for the stack's sysctls, or None if all are safe."""
    needed = unsafe(names)
    return f"--allowed-unsafe-sysctls={','.join(needed)}" if needed else None


def caveats(names: Iterable[str]) -> list[str]:
    """Safe names that older releases or kernels do not treat as safe, one line each."""
    out = []
    for name in sorted(set(names)):
        s = SAFE_SYSCTLS.get(name)
        if s and s.since and _release(s.since) > _release(_NOTE_AFTER):
            out.append(f"{name} is safe since Kubernetes {s.since} on kernel {s.kernel}+: "
                       "on older clusters or kernels add it to --allowed-unsafe-sysctls too")
    return out
