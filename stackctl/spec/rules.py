"""Cross-field rules that types alone cannot express.

Each rule yields ``(key path, message, hint)``; :mod:`stackctl.spec.load` adds the file.
Rules run only on a spec that structured cleanly, so they can rely on the types.
"""

from __future__ import annotations

import re
from typing import Iterator, Union

import networkx as nx

from stackctl.spec.model import Stack
from stackctl.spec.ports import PortBinding
from stackctl.spec.sysctls import name_problem

KeyPath = tuple[Union[str, int], ...]
Found = tuple[KeyPath, str, str]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
NAME_HINT = "use 1 to 40 of a-z, 0-9, '_' and '-', starting with a letter or digit"
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
VOLUME_MODES = {"ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated",
                "shared", "rshared", "slave", "rslave", "private", "rprivate"}


def check(stack: Stack) -> list[Found]:
    """Every rule violation in ``stack``, in a stable order."""
    return [
        *_names(stack),
        *_container_names(stack),
        *_sysctls(stack),
        *_ports(stack),
        *_members(stack),
    ]


def _names(stack: Stack) -> Iterator[Found]:
    if not NAME_RE.match(stack.name):
        yield ("stack", "name"), f"invalid stack name {stack.name!r}", NAME_HINT
    for gname, group in stack.groups.items():
        if not NAME_RE.match(gname):
            yield ("groups", gname), f"invalid group name {gname!r}", NAME_HINT
        for mname in group.members:
            if not NAME_RE.match(mname):
                yield ("groups", gname, "members", mname), f"invalid member name {mname!r}", NAME_HINT


def _container_names(stack: Stack) -> Iterator[Found]:
    """Names are ``stack-group[-member]``; '-' in names could make two of them collide."""
    seen: dict[str, KeyPath] = {}
    for gname, group in stack.groups.items():
        paths: list[tuple[str, KeyPath]] = [(f"{stack.name}-{gname}", ("groups", gname))]
        paths += [(f"{stack.name}-{gname}-{m}", ("groups", gname, "members", m))
                  for m in group.members]
        for name, path in paths:
            if name in seen:
                yield (path, f"container name {name!r} is also the name of "
                       f"{'.'.join(str(s) for s in seen[name])}",
                       "rename the group or member so that names do not collide")
            seen[name] = path


def _sysctls(stack: Stack) -> Iterator[Found]:
    for gname, group in stack.groups.items():
        for key in group.sysctls:
            problem = name_problem(key)
            if problem:
                yield ("groups", gname, "sysctls", key), problem[0], problem[1]


def _ports(stack: Stack) -> Iterator[Found]:
    bound: list[tuple[PortBinding, KeyPath]] = []
    for gname, group in stack.groups.items():
        for i, port in enumerate(group.ports):
            path: KeyPath = ("groups", gname, "ports", i)
            for other, other_path in bound:
                if port.conflicts_with(other):
                    where = f"groups.{other_path[1]}.ports[{other_path[3]}]"
                    yield (path, f"host port {port.host_port}/{port.protocol} is already "
                           f"bound by {where}", "publish each host port once")
                    break
            bound.append((port, path))


def _volume(spec: str) -> tuple[str, str] | None:
    """Why a volume string is malformed, as (message, hint); None when it is fine."""
    parts = spec.split(":")
    hint = "write 'SOURCE:/container/path' or 'SOURCE:/container/path:ro'"
    if len(parts) not in (2, 3) or not all(parts[:2]):
        return f"cannot read volume {spec!r}", hint
    source, target = parts[0], parts[1]
    if not target.startswith("/"):
        return f"container path {target!r} in {spec!r} is not absolute", hint
    if not source.startswith("/") and not VOLUME_NAME_RE.match(source):
        return (f"volume source {source!r} is neither an absolute host path nor a "
                "volume name", "use an absolute host path or a named volume")
    if len(parts) == 3:
        bad = set(parts[2].split(",")) - VOLUME_MODES
        if bad:
            return f"unknown volume mode {','.join(sorted(bad))!r} in {spec!r}", "use ro or rw"
    return None


def _members(stack: Stack) -> Iterator[Found]:
    for gname, group in stack.groups.items():
        graph: nx.DiGraph = nx.DiGraph()
        for mname, member in group.members.items():
            mpath: KeyPath = ("groups", gname, "members", mname)
            graph.add_node(mname)
            if not member.image.strip():
                yield mpath + ("image",), "image is empty", "name an image, e.g. 'nginx:1.27'"
            for i, volume in enumerate(member.volumes):
                problem = _volume(volume)
                if problem:
                    yield mpath + ("volumes", i), problem[0], problem[1]
            for key in member.environment:
                if not key or "=" in key:
                    yield (mpath + ("environment", key), f"invalid variable name {key!r}",
                           "variable names cannot be empty or contain '='")
            for i, dep in enumerate(member.depends_on):
                if dep == mname:
                    yield mpath + ("depends_on", i), "a member cannot depend on itself", "remove it"
                elif dep not in group.members:
                    known = ", ".join(sorted(group.members)) or "none"
                    yield (mpath + ("depends_on", i), f"unknown member {dep!r} of group {gname!r}",
                           f"members of this group: {known}")
                else:
                    graph.add_edge(dep, mname)
        for cycle in sorted(sorted(c) for c in nx.simple_cycles(graph)):
            first = cycle[0]
            order = _cycle_order(graph, first)
            yield (("groups", gname, "members", first, "depends_on"),
                   "depends_on forms a cycle: " + " -> ".join(order),
                   "remove one of these dependencies")


def _cycle_order(graph: nx.DiGraph, start: str) -> list[str]:
    cycle = nx.find_cycle(graph, start)
    nodes = [u for u, _ in cycle]
    i = nodes.index(start) if start in nodes else 0
    nodes = nodes[i:] + nodes[:i]
    return [*nodes, nodes[0]]
