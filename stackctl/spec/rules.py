"""Cross-field rules that types alone cannot express.

Each rule yields ``(key path, message, hint)``; :mod:`stackctl.spec.load` adds the file.
Rules run on a spec that structured (possibly after the loader set aside the values that
did not), so they can rely on the types.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Union

if TYPE_CHECKING:
    import networkx as nx

from stackctl.spec import options
from stackctl.spec.model import Group, Stack
from stackctl.spec.ports import PortBinding
from stackctl.spec.sysctls import name_problem

KeyPath = tuple[Union[str, int], ...]
Found = tuple[KeyPath, str, str]
# Names another key path for a message about ``here``: ``groups.a.ports[0] in b.toml``.
Locate = Callable[[KeyPath, KeyPath], str]

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
NAME_RULE = "names are 1 to 40 of a-z, 0-9, '_' and '-', starting with a letter or digit"

# Docker's grammar for image references (distribution/reference), ASCII only.
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_RE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?")

VOLUME_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]+")
VOLUME_MODES = frozenset({"ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated",
                          "shared", "rshared", "slave", "rslave", "private", "rprivate"})
_VOLUME_HINT = "write 'SOURCE:/container/path' or 'SOURCE:/container/path:ro'"

# The engine names a group's sysctl helpers after the owner with these suffixes.
HELPER_SUFFIXES = ("sysctl", "sysctl-read")


def _plain(path: KeyPath, _here: KeyPath) -> str:
    return ".".join(str(s) for s in path)


def check(stack: Stack, locate: Optional[Locate] = None) -> list[Found]:
    """Every rule violation in ``stack``, in a stable order."""
    where = locate or _plain
    return [
        *_names(stack),
        *_container_names(stack, where),
        *_images(stack),
        *_sysctls(stack),
        *_ports(stack, where),
        *_members(stack),
        *options.check(stack),
    ]


# ----------------------------------------------------------------------------- names
def _suggested_name(name: str) -> str:
    """A valid name close to ``name``, for the hint; "" when none is obvious."""
    guess = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:40].rstrip("-_")
    return guess if guess and guess != name and NAME_RE.fullmatch(guess) else ""


def _name(kind: str, name: str, path: KeyPath) -> Iterator[Found]:
    if not NAME_RE.fullmatch(name):
        guess = _suggested_name(name)
        hint = NAME_RULE + (f", e.g. {guess!r}" if guess else "")
        yield path, f"invalid {kind} name {name!r}", hint


def _names(stack: Stack) -> Iterator[Found]:
    yield from _name("stack", stack.name, ("stack", "name"))
    for gname, group in stack.groups.items():
        yield from _name("group", gname, ("groups", gname))
        for mname in group.members:
            yield from _name("member", mname, ("groups", gname, "members", mname))


def _container_names(stack: Stack, where: Locate) -> Iterator[Found]:
    """Names are ``stack-group[-member]``; '-' in names could make two of them collide."""
    seen: dict[str, tuple[KeyPath, str]] = {}
    for gname, group in stack.groups.items():
        gpath: KeyPath = ("groups", gname)
        names: list[tuple[str, KeyPath, str]] = [(f"{stack.name}-{gname}", gpath, "")]
        names += [(f"{stack.name}-{gname}-{suffix}", gpath, "the sysctl helper of ")
                  for suffix in HELPER_SUFFIXES]
        names += [(f"{stack.name}-{gname}-{m}", gpath + ("members", m), "") for m in group.members]
        for name, path, role in names:
            if name not in seen:
                seen[name] = (path, role)
                continue
            # Report at the group or member, naming the other one (or the helper).
            (here, _), (there, there_role) = ((path, role), seen[name])
            if role and not there_role:
                (here, _), (there, there_role) = (seen[name], (path, role))
            yield (here, f"container name {name!r} is also the name of "
                   f"{there_role}{where(there, here)}",
                   "rename the group or member so that container names do not collide")


# ---------------------------------------------------------------------------- images
def _image(image: str, path: KeyPath) -> Iterator[Found]:
    if not image.strip():
        yield path, "the image is empty", "name an image, e.g. 'nginx:1.27'"
    elif not IMAGE_RE.fullmatch(image) or len(image.split("@")[0].split(":")[0]) > 255:
        yield (path, f"{image!r} is not a valid image reference",
               "write [REGISTRY/]NAME[:TAG][@DIGEST] with a lower-case NAME, e.g. 'nginx:1.27'")


def _images(stack: Stack) -> Iterator[Found]:
    for key in ("owner_image", "helper_image"):
        yield from _image(getattr(stack.defaults, key), ("defaults", key))
    for gname, group in stack.groups.items():
        for key in ("owner_image", "helper_image"):
            value = getattr(group, key)
            if value is not None:
                yield from _image(value, ("groups", gname, key))
        for mname, member in group.members.items():
            yield from _image(member.image, ("groups", gname, "members", mname, "image"))


# ------------------------------------------------------------------- sysctls, ports
def _sysctls(stack: Stack) -> Iterator[Found]:
    for gname, group in stack.groups.items():
        for key in group.sysctls:
            problem = name_problem(key)
            if problem:
                yield ("groups", gname, "sysctls", key), problem[0], problem[1]


def _ports(stack: Stack, where: Locate) -> Iterator[Found]:
    bound: list[tuple[PortBinding, KeyPath]] = []
    for gname, group in stack.groups.items():
        for i, port in enumerate(group.ports):
            path: KeyPath = ("groups", gname, "ports", i)
            for other, other_path in bound:
                if port.conflicts_with(other):
                    yield (path, f"host port {port.host_socket} is already bound by "
                           f"{where(other_path, path)}",
                           "publish each host port once: pick another host port or address")
                    break
            bound.append((port, path))


# --------------------------------------------------------------------------- members
def _volume(spec: str) -> Optional[tuple[str, str]]:
    """Why a volume string is malformed, as (message, hint); None when it is fine."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        return f"cannot read volume {spec!r}", _VOLUME_HINT
    source, target = parts[0], parts[1]
    if not target.startswith("/"):
        return f"container path {target!r} in {spec!r} is not absolute", _VOLUME_HINT
    if target.rstrip("/") == "":
        return f"{spec!r} mounts over the container's root", "mount on a directory below '/'"
    if not source.startswith("/") and not VOLUME_NAME_RE.fullmatch(source):
        return (f"volume source {source!r} is neither an absolute host path nor a "
                "volume name", "use an absolute host path, or a volume name of at least two "
                "letters, digits, '_', '.' or '-'")
    if len(parts) == 3:
        bad = set(parts[2].split(",")) - VOLUME_MODES
        if bad:
            return (f"unknown volume mode {','.join(sorted(bad))!r} in {spec!r}",
                    "use ro or rw, optionally with z, Z or a propagation mode such as rshared")
    return None


def _volumes(volumes: tuple[str, ...], mpath: KeyPath) -> Iterator[Found]:
    targets: dict[str, int] = {}
    for i, volume in enumerate(volumes):
        problem = _volume(volume)
        if problem:
            yield mpath + ("volumes", i), problem[0], problem[1]
            continue
        target = volume.split(":")[1].rstrip("/")
        if target in targets:
            yield (mpath + ("volumes", i), f"container path {target!r} is already mounted by "
                   f"volumes[{targets[target]}]", "mount each container path once")
        targets.setdefault(target, i)


def _depends_on(stack: Stack, gname: str, group: Group, mname: str,
                deps: tuple[str, ...]) -> Iterator[Found]:
    mpath: KeyPath = ("groups", gname, "members", mname, "depends_on")
    listed: set[str] = set()
    for i, dep in enumerate(deps):
        if dep == mname:
            yield mpath + (i,), "a member cannot depend on itself", "remove it"
        elif dep in listed:
            yield mpath + (i,), f"{dep!r} is listed twice", "remove one of them"
        elif dep not in group.members:
            elsewhere = sorted(g for g, other in stack.groups.items() if dep in other.members)
            if elsewhere:
                yield (mpath + (i,), f"{dep!r} is a member of group {elsewhere[0]!r}, not of "
                       f"{gname!r}", "depends_on names members of the same group only")
                continue
            others = sorted(m for m in group.members if m != mname)
            close = difflib.get_close_matches(dep, others, n=1, cutoff=0.6)
            hint = (f"did you mean {close[0]!r}?" if close else
                    f"members of group {gname!r}: {', '.join(others)}" if others else
                    f"group {gname!r} has no other members")
            yield mpath + (i,), f"unknown member {dep!r}", hint
        listed.add(dep)


def _members(stack: Stack) -> Iterator[Found]:
    for gname, group in stack.groups.items():
        edges: list[tuple[str, str]] = []
        for mname, member in group.members.items():
            mpath: KeyPath = ("groups", gname, "members", mname)
            yield from _volumes(member.volumes, mpath)
            for key in member.environment:
                if not key or "=" in key:
                    yield (mpath + ("environment", key), f"invalid variable name {key!r}",
                           "variable names cannot be empty or contain '='")
            yield from _depends_on(stack, gname, group, mname, member.depends_on)
            edges += [(mname, d) for d in member.depends_on if d in group.members and d != mname]
        if edges:  # networkx costs ~100 ms to import: only when there is a graph to check
            import networkx as nx

            yield from _cycles(gname, group, nx.DiGraph(edges))


def _cycles(gname: str, group: Group, graph: nx.DiGraph) -> Iterator[Found]:
    """One cycle per strongly connected component: bounded, however tangled the graph."""
    import networkx as nx

    components = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    for component in sorted(components):
        start = component[0]
        edges = nx.find_cycle(graph.subgraph(component), start)
        order = [u for u, _ in edges]
        i = order.index(start) if start in order else 0
        order = order[i:] + order[:i]
        index = group.members[order[0]].depends_on.index(order[1 % len(order)])
        yield (("groups", gname, "members", order[0], "depends_on", index),
               "depends_on forms a cycle: " + " -> ".join([*order, order[0]]),
               "'a -> b' means a depends on b: remove one of these dependencies")
