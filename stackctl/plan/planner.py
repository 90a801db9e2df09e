"""desired resources x observed facts -> Plan. Pure: no engine, no I/O, no clock.

Decisions, in the order the design contract's plan semantics state them:

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
* an owner joining or leaving a network (or whose DNS aliases there changed) is updated in
  place: ``docker network connect``/``disconnect``, nothing restarts;
* a network whose settings changed is replaced; the owners on it re-join the new one in
  place;
* a volume is created, never deleted by a plan: only ``destroy --volumes`` and ``--replace
  volume.NAME`` remove one. A volume whose driver or options changed is reported, with
  the way to recreate it, and left alone;
* containers and networks the spec no longer names are deleted.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import attrs

from stackctl.errors import PlanError
from stackctl.images import short
from stackctl.member_config import IN_PLACE, NOT_REMOVABLE_IN_PLACE
from stackctl.observed import Observed, ObservedContainer, ObservedNetwork, ObservedVolume
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
    what = {"name": "renamed", "restart": "restart policy changed", "state": "paused"}
    return " and ".join(what.get(a.name, f"{a.name} changed") for a in attributes) + " by hand"


def _unpaused(obs: ObservedContainer) -> tuple[AttributeChange, ...]:
    """A paused container is unpaused in place: a restart would give an owner a new
    namespace (stranding its members) and a member a new process, for nothing."""
    return (AttributeChange("state", "paused", "running"),) if obs.status == "paused" else ()


def completed(r: Resource, obs: ObservedContainer) -> bool:
    """A member that ran to completion: exit code 0 under a policy that does not
    restart it (``no``, ``on-failure``). It is done, not down: starting it again on
    every apply would run a one-shot job again and again."""
    return (r.role is Role.MEMBER and obs.status == "exited" and obs.exit_code == 0
            and r.restart in ("no", "on-failure"))


def _status(c: ObservedContainer) -> str:
    if c.status == "exited":
        return f"exited (exit code {c.exit_code})"
    return c.status


class _Planner:
    def __init__(self, desired: list[Resource], observed: Observed, replace: set[str],
                 remove_volumes: bool = False) -> None:
        self.desired = desired
        self.observed = observed
        self.replace = replace
        self.remove_volumes = remove_volumes
        self.networks: dict[str, ObservedNetwork] = {}
        self.volumes: dict[str, ObservedVolume] = {}
        self.extra_objects: list[ObservedNetwork | ObservedVolume] = []
        for net in observed.networks:
            if net.address in self.networks:
                self.extra_objects.append(net)
            else:
                self.networks[net.address] = net
        for vol in observed.volumes:
            if vol.address in self.volumes:
                self.extra_objects.append(vol)
            else:
                self.volumes[vol.address] = vol
        self.by_address: dict[str, ObservedContainer] = {}
        self.extras: list[ObservedContainer] = []
        wanted_names = {r.address: r.name for r in desired}
        for c in sorted(observed.containers, key=lambda c: (c.name != wanted_names.get(c.address), c.name)):
            if c.role is Role.HELPER and c.running:
                continue  # at work for another run (a concurrent plan's read helper)
            if c.address in self.by_address or c.role in (None, Role.HELPER):
                # Helpers are short-lived: one that is still there was left by an
                # interrupted run. Unknown roles and duplicates are not ours to keep.
                self.extras.append(c)
            else:
                self.by_address[c.address] = c
        self.changes: dict[str, Change] = {}

    def run(self) -> list[Change]:
        for r in self.desired:
            if r.role is Role.NETWORK:
                self.changes[r.address] = self.network(r, self.networks.get(r.address))
            elif r.role is Role.VOLUME:
                self.changes[r.address] = self.volume(r, self.volumes.get(r.address))
            else:
                handler = {Role.OWNER: self.owner, Role.HELPER: self.helper, Role.MEMBER: self.member}[r.role]
                self.changes[r.address] = handler(r, self.by_address.get(r.address))
        return list(self.changes.values()) + self.orphans() + self.orphan_objects()

    # ------------------------------------------------------------ networks, volumes
    def network(self, r: Resource, obs: Optional[ObservedNetwork]) -> Change:
        def change(action: Action, reason: str = "", attributes: tuple[AttributeChange, ...] = ()) -> Change:
            return Change(address=r.address, action=action, reason=reason,
                          before=obs.config if obs else None, after=r.config,
                          attributes=attributes, resource=r, container_id=obs.id if obs else None,
                          container_name=obs.name if obs else r.name, kind="network")
        if obs is None:
            return change(Action.CREATE, "network does not exist")
        if r.address in self.replace:
            return change(Action.REPLACE, "replacement requested with --replace: the owners "
                          "on it re-join the new one in place")
        if obs.config_hash != r.config_hash or obs.name != r.name:
            attributes = _diff(obs.config, r.config, forces=True)
            if obs.name != r.name:
                attributes += (AttributeChange("name", obs.name, r.name, True),)
            what = _names(attributes) if attributes else "configuration"
            return change(Action.REPLACE, f"{what} changed: forces replacement; the owners on "
                          "it re-join the new one in place, nothing restarts", attributes)
        return change(Action.NOOP)

    def volume(self, r: Resource, obs: Optional[ObservedVolume]) -> Change:
        def change(action: Action, reason: str = "", attributes: tuple[AttributeChange, ...] = ()) -> Change:
            return Change(address=r.address, action=action, reason=reason,
                          before=obs.config if obs else None, after=r.config,
                          attributes=attributes, resource=r,
                          container_id=obs.name if obs else None,
                          container_name=obs.name if obs else r.name, kind="volume")
        if obs is None:
            return change(Action.CREATE, "volume does not exist")
        if r.address in self.replace:
            return change(Action.REPLACE, "replacement requested with --replace: its data is "
                          "lost; the members that mount it are replaced")
        if obs.config_hash != r.config_hash:
            attributes = _diff(obs.config, r.config, forces=False)
            what = _names(attributes) if attributes else "configuration"
            return change(Action.NOOP, f"{what} changed, but a volume is never replaced by a "
                          f"plan: its data would be lost. Recreate it (data lost) with "
                          f"`--replace {r.address}`", attributes)
        return change(Action.NOOP)

    def orphan_objects(self) -> list[Change]:
        """Networks and volumes of the stack that the spec no longer names. Networks go;
        volumes stay unless ``destroy --volumes`` asked."""
        out: list[Change] = []
        leftovers: list[ObservedNetwork | ObservedVolume] = [
            *(o for a, o in self.networks.items() if a not in self.changes),
            *(v for a, v in self.volumes.items() if a not in self.changes)]
        for o in sorted(leftovers + self.extra_objects, key=lambda o: o.address):
            addr = o.address
            if addr in self.changes or addr in {x.address for x in out}:
                addr = f"{addr}#{o.name}"
            if isinstance(o, ObservedNetwork):
                out.append(Change(address=addr, action=Action.DELETE, reason="no longer in the spec",
                                  before=o.config, container_id=o.id, container_name=o.name,
                                  kind="network"))
            elif self.remove_volumes:
                out.append(Change(address=addr, action=Action.DELETE,
                                  reason="--volumes: the volume and its data are removed",
                                  before=o.config, container_id=o.name, container_name=o.name,
                                  kind="volume"))
            else:
                out.append(Change(address=addr, action=Action.NOOP,
                                  reason="kept: a volume is only removed by `destroy --volumes`",
                                  before=o.config, container_id=o.name, container_name=o.name,
                                  kind="volume"))
        return out

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

    def _joined(self, r: Resource, obs: ObservedContainer) -> tuple[AttributeChange, ...]:
        """The owner's networks, when they differ from what the engine reports: joined
        networks and the DNS aliases there. A network that is created or replaced in this
        plan counts as not joined yet."""
        if obs.networks is None or r.config.get("network_mode") == "none":
            return ()
        want = {name: sorted(aliases) for name, aliases, _ in r.extra.get("networks", [])}
        fresh = {c.resource.name for c in self.changes.values() if c.resource is not None
                 and c.resource.role is Role.NETWORK and c.action in _REPLACING}
        have = {name: sorted(aliases) for name, aliases in obs.networks.items()
                if name not in fresh}
        # An alias left over from a removed member resolves to this same owner: harmless,
        # and re-joining to drop it would reset the group's connections on that network.
        # A missing alias (a new member) is worth the re-join.
        if set(want) == set(have) and all(set(want[n]) <= set(have[n]) for n in want):
            return ()
        kept = {n: (a if n in want and set(want[n]) <= set(a) else want.get(n, a))
                for n, a in have.items()}
        return (AttributeChange("networks", have, {n: kept.get(n, a) for n, a in want.items()}),)

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
        mended = _mended(r, obs) + _unpaused(obs)
        down = not obs.running and obs.status != "paused"
        joined = self._joined(r, obs)
        if joined:
            before, after = joined[0].before, joined[0].after
            moves = [f"joins {n}" for n in after if n not in before]
            moves += [f"leaves {n}" for n in before if n not in after]
            moves += [f"re-joins {n} (DNS aliases changed)" for n in after
                      if n in before and before[n] != after[n]]
            reason = ", ".join(moves) + ": in place (docker network connect/disconnect), nothing restarts"
            if down:
                return self._change(r, obs, Action.RESTART, f"owner is {_status(obs)}: started "
                                    f"again; {reason}", mended + joined)
            if mended:
                reason = f"{_by_hand(mended)}; {reason}"
            return self._change(r, obs, Action.UPDATE, reason, mended + joined)
        if down:
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
        for dep in r.depends_on:
            dep_change = self.changes.get(dep)
            if (dep.startswith("volume.") and dep_change is not None
                    and dep_change.action is Action.REPLACE):
                return self._change(r, obs, Action.REPLACE, f"{dep} is replaced: the member "
                                    "mounts the new volume", cause=dep)
        if owner.action is Action.REPLACE:
            return self._change(r, obs, Action.REPLACE, "owner is replaced: the member must "
                                "join the new namespace", cause=owner_addr)
        if owner.action is Action.CREATE or owner_obs is None:
            return self._change(r, obs, Action.REPLACE, "owner was removed: member is "
                                "attached to a dead namespace", cause=owner_addr)
        if obs.network_container and obs.network_container != owner_obs.id:
            return self._change(r, obs, Action.REPLACE, "owner was recreated after the member "
                                "started: attached to a dead namespace", cause=owner_addr)
        mended = tuple(a for a in _mended(r, obs) if a.name == "name") + _in_place(r, obs) + _unpaused(obs)
        if any(a.forces_replacement for a in mended):
            # A limit lifted by hand or in the spec: docker update cannot lift it.
            forcing = [a for a in mended if a.forces_replacement]
            return self._change(r, obs, Action.REPLACE, f"{_names(forcing)} must be lifted, "
                                "which docker update cannot do: forces replacement", mended)
        restart_reason = ""
        if completed(r, obs) or obs.status in ("paused", "restarting"):
            # Done; or to be unpaused in place; or being restarted by the engine under
            # its own policy (status reports a restart loop as failing).
            pass
        elif owner.action is Action.RESTART:
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
    # What is on the engine orders destruction too: an owner leaves a network before the
    # network goes, a member is removed before the volume it mounts.
    networks = {n.name: n.address for n in observed.networks}
    volumes = {v.name: v.address for v in observed.volumes}
    for c in observed.containers:
        if c.address not in addresses:
            continue
        for name in c.networks or {}:
            if name in networks:
                edges.append((networks[name], c.address))
        if c.role is Role.MEMBER:
            for spec in (c.config or {}).get("volumes") or []:
                source = str(spec).split(":", 1)[0]
                if source in volumes:
                    edges.append((volumes[source], c.address))
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
                        "stack (addresses look like network.NAME, volume.NAME, owner.GROUP, "
                        "helper.GROUP, member.GROUP.NAME)")
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


def _missing_external(desired: list[Resource], observed: Observed) -> list[str]:
    """External networks and volumes the spec names that the engine does not have."""
    missing = []
    for r in desired:
        for name, _, managed in r.extra.get("networks", []):
            if managed is None and name not in observed.network_names:
                missing.append(f"network {name!r} (external, joined by {r.address}) does not "
                               f"exist on the engine: create it (docker network create {name}) "
                               "or stop declaring it external")
        for name in r.extra.get("external_volumes", []):
            if name not in observed.volume_names:
                missing.append(f"volume {name!r} (external, mounted by {r.address}) does not "
                               f"exist on the engine: create it (docker volume create {name}) "
                               "or stop declaring it external")
    return list(dict.fromkeys(missing))


def make_plan(desired: list[Resource], observed: Observed, *, destroy: bool = False,
              replace: Iterable[str] = (), targets: Iterable[str] = (),
              volumes: bool = False) -> Plan:
    """Compute the plan that takes ``observed`` to ``desired`` (or to nothing, ``destroy``;
    ``volumes`` then removes the stack's volumes too)."""
    replace = set(replace)
    known = {r.address for r in desired}
    bad = replace - known
    if bad:
        raise PlanError(f"--replace {', '.join(sorted(bad))}: no such address in the spec")
    if not destroy:
        missing = _missing_external(desired, observed)
        if missing:
            raise PlanError("nothing was changed: " + "; ".join(missing) if len(missing) == 1
                            else "nothing was changed:\n" + "\n".join(missing))
    planner = _Planner([] if destroy else desired, observed, replace, remove_volumes=volumes)
    changes = planner.run()
    if destroy:
        # Everything of a group follows its owner out: the cause lets --target drag it.
        owner_of = {c.id: address(Role.OWNER, c.group) for c in observed.containers
                    if c.role is not Role.OWNER}
        changes = [c if c.action is Action.NOOP else
                   Change(address=c.address, action=Action.DELETE,
                          reason="destroy requested" + (": the volume and its data are removed"
                                                        if c.kind == "volume" else ""),
                          before=c.before, container_id=c.container_id,
                          container_name=c.container_name, kind=c.kind,
                          cause=owner_of.get(c.container_id or ""))
                   for c in changes]
    edges = _edges(desired, changes, observed)
    if targets:
        changes = _restrict(changes, edges, set(targets))
    return Plan(stack=observed.stack, changes=tuple(changes), edges=tuple(edges),
                fingerprint=observed.fingerprint(), destroy=destroy)
