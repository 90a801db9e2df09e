"""Checks a plan must pass before its first step: is every host port it publishes free?

A host port in use is only found by the engine when the owner *starts*, and a port
change replaces the owner: without this check the old owner and its members are
destroyed first, the new owner then fails to publish, and the group is left with no
container at all. So before anything is destroyed, each binding the plan newly takes
is compared with what holds ports now (the engine's published ports of other
containers, and on a local engine this host's listening sockets), leaving out what the
plan itself frees. Pure: the engine adapter reports the holders.
"""

from __future__ import annotations

from typing import Iterable

from stackctl.observed import Held
from stackctl.plan.model import Action, Plan
from stackctl.resources import Role
from stackctl.spec.ports import PortBinding, parse_port


def freed_ids(plan: Plan) -> set[str]:
    """Containers the plan removes: the ports they publish become free before creates."""
    return {c.container_id for c in plan.actionable
            if c.container_id and c.action in (Action.DELETE, Action.REPLACE)}


def new_bindings(plan: Plan) -> list[tuple[str, PortBinding]]:
    """(address, binding) for each host port an owner the plan creates will publish."""
    out = []
    for c in plan.actionable:
        r = c.resource
        if r is not None and r.role is Role.OWNER and c.action in (Action.CREATE, Action.REPLACE):
            out += [(c.address, parse_port(p)) for p in r.config.get("ports", [])]
    return out


def _overlaps(a: PortBinding, b: PortBinding) -> bool:
    """Whether binding ``a`` cannot be made while ``b`` is held. Like
    :meth:`PortBinding.conflicts_with`, and a socket on every IPv6 address ("::") also
    holds the IPv4 ones: Linux makes it dual-stack unless the program asked otherwise."""
    if a.conflicts_with(b):
        return True
    if (a.host_port, a.protocol) != (b.host_port, b.protocol):
        return False
    return "::" in (a.host_ip, b.host_ip) and "." in (a.host_ip + b.host_ip)


def port_conflicts(plan: Plan, held: Iterable[Held]) -> list[str]:
    """One line per binding the plan needs that is held now, naming the holder."""
    freed = freed_ids(plan)
    everything = list(held)
    # A port a freed container publishes is held by the engine's proxy until then: the
    # host socket on it is that proxy's.
    freed_ports = {(h.binding.host_port, h.binding.protocol) for h in everything
                   if h.container_id in freed}
    held = [h for h in everything if h.container_id not in freed]
    out = []
    for address, b in new_bindings(plan):
        holders = [h for h in held if _overlaps(b, h.binding)]
        by_engine = [h for h in holders if h.container_id]
        chosen = by_engine or [h for h in holders if (b.host_port, b.protocol) not in freed_ports]
        if chosen:
            out.append(f"{address}: host port {b.host_socket} is in use: "
                       + "; ".join(sorted({h.holder for h in chosen})))
    return out
