"""desired resources x observed facts -> Plan. Pure: no engine, no I/O, no clock.

Decisions, in the order DESIGN.md section 4 states them:

* a changed sysctl is an in-place update of ``helper.<group>``; nothing restarts;
* a changed owner attribute (image, command, ports) replaces the owner, and every member
  of the group follows, because a member cannot leave a dead namespace;
* a member's ``mem_limit``, ``cpus``, ``pids_limit`` or ``restart`` changed is an
  in-place update (``docker update``): no restart, same id; any other change of a
  member's own replaces that member only;
* a container running another image than its reference names now (a tag that moved on)
  is replaced, like a changed attribute;
* a member attached to a namespace that is not its owner's current one is repaired:
  restarted when the owner kept its id (``docker restart`` re-joins), replaced otherwise;
* containers the spec no longer names are deleted.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import attrs

from stackctl.errors import PlanError
from stackctl.images import short
from stackctl.member_config import IN_PLACE, NOT_REMOVABLE_IN_PLACE
from stackctl.observed import Observed, ObservedContainer
from stackctl.plan.model import Action, AttributeChange, Change, Plan
from stackctl.resources import Resource, Role, address

_REPLACING = (Action.CREATE, Action.REPLACE)


def _diff(before: Optional[dict[str, Any]], after: dict[str, Any], forces: bool) -> tuple[AttributeChange, ...]:
    before = before or {}
    return tuple(
        AttributeChange(key, before.get(key), after.get(key), forces)
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    )


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _names(attrs_: Iterable[AttributeChange]) -> str:
    return _and([_label(a) for a in attrs_])


def _label(a: AttributeChange) -> str:
    """How a reason names a changed attribute; env files by path, never by content."""
    if a.name != "env_file":
        return a.name
    before = {f["path"]: f["content"] for f in a.before or () if isinstance(f, dict)}
    after = {f["path"]: f["content"] for f in a.after or () if isinstance(f, dict)}
    changed = [p for p in dict.fromkeys([*before, *after]) if before.get(p) != after.get(p)]
    if not changed:
        return "env_file order"
    return ("env file " if len(changed) == 1 else "env files ") + _and(changed)


def _updatable(a: AttributeChange) -> bool:
    """Whether ``docker update`` makes this change (it cannot lift a memory or CPU limit)."""
    return a.name in IN_PLACE and not (a.name in NOT_REMOVABLE_IN_PLACE and a.after is None)


def _in_place(r: Resource, obs: ObservedContainer) -> tuple[AttributeChange, ...]:
    """A member's in-place attributes that differ from the spec: compared with the live
    values where they were read, else with the labels (which keep creation's values)."""
    label = obs.config or {}
    live = dict(obs.live)
    if obs.restart_policy is not None:
        live["restart"] = obs.restart_policy
    out = []
    for key in IN_PLACE:
        want = r.config.get(key)
        now = live[key] if key in live else label.get(key)
        if now != want:
            out.append(AttributeChange(key, now, want, forces_replacement=not _updatable(
                AttributeChange(key, now, want))))
    return tuple(out)


def _tampered(r: Resource, obs: ObservedContainer) -> tuple[AttributeChange, ...]:
    """Attributes whose live value contradicts the container's own labels."""
    return tuple(
        AttributeChange(key, live, r.config[key], forces_replacement=True)
        for key, live in sorted(obs.actual.items())
        if key in r.config and live != r.config[key]
    )


def _mended(r: Resource, obs: ObservedContainer) -> tuple[AttributeChange, ...]:
    """What was changed by hand that can be mended in place: name, restart policy."""
    out = []
    if obs.name != r.name:
        out.append(AttributeChange("name", obs.name, r.name))
    if obs.restart_policy is not None and obs.restart_policy != r.restart:
        out.append(AttributeChange("restart", obs.restart_policy, r.restart))
    return tuple(out)


def _by_hand(attributes: tuple[AttributeChange, ...]) -> str:
    what = {"name": "renamed", "restart": "restart policy changed"}
    return " and ".join(what.get(a.name, f"{a.name} changed") for a in attributes) + " by hand"


def _status(c: ObservedContainer) -> str:
    if c.status == "exited":
        return f"exited (exit code {c.exit_code})"
    return c.status


class _Planner:
    def __init__(self, desired: list[Resource], observed: Observed, replace: set[str]) -> None:
        self.desired = desired
        self.observed = observed
        self.replace = replace
        self.by_address: dict[str, ObservedContainer] = {}
        self.extras: list[ObservedContainer] = []
        wanted_names = {r.address: r.name for r in desired}
        for c in sorted(observed.containers, key=lambda c: (c.name != wanted_names.get(c.address), c.name)):
            if c.address in self.by_address or c.role in (None, Role.HELPER):
                # Helpers are short-lived: one that is still there was left by an
                # interrupted run. Unknown roles and duplicates are not ours to keep.
                self.extras.append(c)
            else:
                self.by_address[c.address] = c
        self.changes: dict[str, Change] = {}

    def run(self) -> list[Change]:
        for r in self.desired:
            handler = {Role.OWNER: self.owner, Role.HELPER: self.helper, Role.MEMBER: self.member}[r.role]
            self.changes[r.address] = handler(r, self.by_address.get(r.address))
        return list(self.changes.values()) + self.orphans()

    def _change(self, r: Resource, obs: Optional[ObservedContainer], action: Action, reason: str,
                attributes: tuple[AttributeChange, ...] = (), cause: Optional[str] = None) -> Change:
        return Change(
            address=r.address, action=action, reason=reason,
            before=obs.config if obs else None, after=r.config, attributes=attributes,
            resource=r, container_id=obs.id if obs else None,
            container_name=obs.name if obs else r.name, cause=cause,
        )

    def _replacement(self, r: Resource, obs: Optional[ObservedContainer],
                     consequence: str) -> Optional[Change]:
        """What owners and members share: missing, --replace, changed in the spec, or
        contradicted by what the engine really runs. None when none applies (a member's
        in-place changes are decided later, by member())."""
        if obs is None:
            return self._change(r, None, Action.CREATE, f"{r.role.value} does not exist")
        if r.address in self.replace:
            return self._change(r, obs, Action.REPLACE, "replacement requested with --replace")
        if obs.config_hash != r.config_hash:
            attributes = _diff(obs.config, r.config, forces=True)
            if r.role is Role.MEMBER:
                attributes = tuple(attrs.evolve(a, forces_replacement=not _updatable(a))
                                   for a in attributes)
            forcing = [a for a in attributes if a.forces_replacement]
            if forcing or not attributes:
                if forcing and all(a.name in NOT_REMOVABLE_IN_PLACE for a in forcing):
                    reason = (f"{_names(forcing)} removed, which docker update cannot do: "
                              "forces replacement")
                else:
                    reason = f"{_names(forcing) if forcing else 'configuration'} changed: forces replacement"
                return self._change(r, obs, Action.REPLACE, reason + consequence, attributes)
        tampered = _tampered(r, obs)
        if tampered:
            return self._change(r, obs, Action.REPLACE, f"{_names(tampered)} changed by hand: "
                                "forces replacement" + consequence, tampered)
        moved = self._image_moved(r, obs)
        if moved is not None:
            return self._change(r, obs, Action.REPLACE, f"image {r.config['image']} now names "
                                f"{moved.after} (running {moved.before})" + consequence, (moved,))
        return None

    def _image_moved(self, r: Resource, obs: ObservedContainer) -> Optional[AttributeChange]:
        """The image id a container runs, when its reference now names another one."""
        ref = r.config.get("image")
        now = self.observed.images.get(ref) if isinstance(ref, str) else None
        if not (now and obs.image_id and now != obs.image_id):
            return None
        if (obs.config or {}).get("image") != ref:
            return None  # another reference: a changed attribute, decided above
        return AttributeChange("image_id", short(obs.image_id), short(now), forces_replacement=True)

    def owner(self, r: Resource, obs: Optional[ObservedContainer]) -> Change:
        replaced = self._replacement(r, obs, " of the owner and of every member in its namespace")
        if replaced is not None:
            return replaced
        assert obs is not None  # a missing container is a create, decided above
        mended = _mended(r, obs)
        if not obs.running:
            return self._change(r, obs, Action.RESTART, f"owner is {_status(obs)}: started "
                                "again; its members re-join the new namespace", mended)
        if mended:
            return self._change(r, obs, Action.UPDATE, f"{_by_hand(mended)}: updated in place", mended)
        return self._change(r, obs, Action.NOOP, "")

    def helper(self, r: Resource, obs: Optional[ObservedContainer]) -> Change:
        owner_addr = address(Role.OWNER, r.group)
        owner = self.changes[owner_addr]
        want: dict[str, str] = r.config["sysctls"]
        live = self.observed.sysctls.get(r.group)
        if owner.action is Action.CREATE:
            return self._change(r, None, Action.CREATE, "the owner is new: sysctls are written "
                                "into its namespace and read back", cause=owner_addr)
        if owner.action is Action.REPLACE:
            return self._change(r, None, Action.CREATE, "the owner is replaced: sysctls are "
                                "written into the new namespace and read back", cause=owner_addr)
        if owner.action is Action.RESTART:
            return self._change(r, None, Action.UPDATE, "the owner restarts: sysctls are "
                                "written again and read back", cause=owner_addr)
        if r.address in self.replace:
            return self._change(r, None, Action.UPDATE, "rewrite requested with --replace: "
                                "sysctls are written again and read back")
        if live is None:
            return self._change(r, None, Action.NOOP, "")
        before = {"sysctls": dict(live)}
        attributes = tuple(
            AttributeChange(f'sysctls["{k}"]', live.get(k), v)
            for k, v in sorted(want.items()) if live.get(k) != v
        )
        if attributes:
            return Change(
                address=r.address, action=Action.UPDATE,
                reason="live sysctls differ from the spec: written in place, "
                       "no container is recreated or restarted",
                before=before, after=r.config, attributes=attributes, resource=r,
                container_name=r.name,
            )
        return Change(address=r.address, action=Action.NOOP, before=before, after=r.config,
                      resource=r, container_name=r.name)

    def member(self, r: Resource, obs: Optional[ObservedContainer]) -> Change:
        owner_addr = address(Role.OWNER, r.group)
        owner = self.changes[owner_addr]
        owner_obs = self.by_address.get(owner_addr)
        replaced = self._replacement(r, obs, "")
        if replaced is not None:
            return replaced
        assert obs is not None  # a missing container is a create, decided above
        if owner.action is Action.REPLACE:
            return self._change(r, obs, Action.REPLACE, "owner is replaced: the member must "
                                "join the new namespace", cause=owner_addr)
        if owner.action is Action.CREATE or owner_obs is None:
            return self._change(r, obs, Action.REPLACE, "owner was removed: member is "
                                "attached to a dead namespace", cause=owner_addr)
        if obs.network_container and obs.network_container != owner_obs.id:
            return self._change(r, obs, Action.REPLACE, "owner was recreated after the member "
                                "started: attached to a dead namespace", cause=owner_addr)
        mended = tuple(a for a in _mended(r, obs) if a.name == "name") + _in_place(r, obs)
        if any(a.forces_replacement for a in mended):
            # A limit lifted by hand or in the spec: docker update cannot lift it.
            forcing = [a for a in mended if a.forces_replacement]
            return self._change(r, obs, Action.REPLACE, f"{_names(forcing)} must be lifted, "
                                "which docker update cannot do: forces replacement", mended)
        restart_reason = ""
        if owner.action is Action.RESTART:
            restart_reason = "owner restarts: member re-joins its new namespace"
        elif obs.running and obs.netns and owner_obs.netns:
            # Both namespaces are known (local engine): comparing them is the exact test.
            # The member's start time may be unknown (0) when it was read from the listing.
            if obs.netns != owner_obs.netns:
                if not obs.started_at or owner_obs.started_at > obs.started_at:
                    restart_reason = "owner restarted after member started: attached to a dead namespace"
                else:
                    restart_reason = "member is not in its owner's network namespace"
        elif obs.running and obs.started_at and owner_obs.started_at > obs.started_at:
            # Remote engine: the start times stand in for the namespaces.
            restart_reason = "owner restarted after member started: attached to a dead namespace"
        elif not obs.running:
            restart_reason = f"member is {_status(obs)}: started again"
        if restart_reason:
            cause = owner_addr if owner.action is Action.RESTART else None
            return self._change(r, obs, Action.RESTART, restart_reason, mended, cause=cause)
        if mended:
            label = obs.config or {}
            in_spec = [a for a in mended if a.name in IN_PLACE and label.get(a.name) != a.after]
            if in_spec:
                return self._change(r, obs, Action.UPDATE, f"{_names(in_spec)} changed: updated "
                                    "in place (docker update), without a restart", mended)
            return self._change(r, obs, Action.UPDATE, f"{_by_hand(mended)}: updated in place", mended)
        return self._change(r, obs, Action.NOOP, "")

    def orphans(self) -> list[Change]:
        groups = {r.group for r in self.desired}
        out: list[Change] = []
        leftovers = [c for a, c in self.by_address.items() if a not in self.changes] + self.extras
        for c in sorted(leftovers, key=lambda c: c.address):
            if c.role is Role.HELPER:
                addr = f"{c.address}#{c.id[:12]}"
                reason = "sysctl helper container left by an interrupted run"
            elif c.address in self.changes or c.address in {x.address for x in out}:
                addr = f"{c.address}#{c.id[:12]}"
                reason = "duplicate container for this address"
            else:
                addr = c.address
                reason = (f"group {c.group!r} is no longer in the spec" if c.group not in groups
                          else "no longer in the spec")
            out.append(Change(address=addr, action=Action.DELETE, reason=reason, before=c.config,
                              container_id=c.id, container_name=c.name))
        return out


def _edges(desired: list[Resource], changes: list[Change], observed: Observed) -> list[tuple[str, str]]:
    edges = [(dep, r.address) for r in desired for dep in r.depends_on]
    owners = {c.group: c.address for c in observed.containers if c.role is Role.OWNER}
    addresses = {c.address for c in changes}
    for c in observed.containers:
        if c.role is Role.MEMBER and c.group in owners and c.address in addresses:
            edges.append((owners[c.group], c.address))
    return sorted(set(edges))


_DISRUPTIVE = (Action.CREATE, Action.REPLACE, Action.RESTART, Action.DELETE)


def _restrict(changes: list[Change], edges: list[tuple[str, str]], targets: set[str]) -> list[Change]:
    """Keep the targets and everything needed to change them safely.

    A kept create, update or restart needs what it depends on (ancestors); a kept delete
    needs what depends on it to go first (descendants). Anything downstream of a kept
    disruptive change that has a change of its own is dragged along: a member must not
    be left in a namespace its owner is leaving.
    """
    import networkx as nx  # only --target needs graph walks; keep plain plans fast to start

    g: nx.DiGraph[str] = nx.DiGraph(edges)
    g.add_nodes_from(c.address for c in changes)
    unknown = targets - {c.address for c in changes}
    if unknown:
        raise PlanError(f"--target {', '.join(sorted(unknown))}: no such address in this "
                        "stack (addresses look like owner.GROUP, helper.GROUP, member.GROUP.NAME)")
    by_addr = {c.address: c for c in changes}
    keep: set[str] = set()
    todo = set(targets)
    while todo:
        addr = todo.pop()
        keep.add(addr)
        change = by_addr.get(addr)
        if change is None:
            continue
        related = nx.descendants(g, addr) if change.action is Action.DELETE else nx.ancestors(g, addr)
        if change.action in _DISRUPTIVE:
            related |= {d for d in nx.descendants(g, addr)
                        if d in by_addr and by_addr[d].action is not Action.NOOP}
        related |= {c.address for c in changes if c.cause == addr and c.action is not Action.NOOP}
        todo |= related - keep
    return [c for c in changes if c.address in keep]


def make_plan(desired: list[Resource], observed: Observed, *, destroy: bool = False,
              replace: Iterable[str] = (), targets: Iterable[str] = ()) -> Plan:
    """Compute the plan that takes ``observed`` to ``desired`` (or to nothing, ``destroy``)."""
    replace = set(replace)
    known = {r.address for r in desired}
    bad = replace - known
    if bad:
        raise PlanError(f"--replace {', '.join(sorted(bad))}: no such address in the spec")
    planner = _Planner([] if destroy else desired, observed, replace)
    changes = planner.run()
    if destroy:
        # Everything of a group follows its owner out: the cause lets --target drag it.
        owner_of = {c.id: address(Role.OWNER, c.group) for c in observed.containers
                    if c.role is not Role.OWNER}
        changes = [Change(address=c.address, action=Action.DELETE, reason="destroy requested",
                          before=c.before, container_id=c.container_id,
                          container_name=c.container_name, cause=owner_of.get(c.container_id or ""))
                   for c in changes]
    edges = _edges(desired, changes, observed)
    if targets:
        changes = _restrict(changes, edges, set(targets))
    return Plan(stack=observed.stack, changes=tuple(changes), edges=tuple(edges),
                fingerprint=observed.fingerprint(), destroy=destroy)
