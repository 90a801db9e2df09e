"""Cross-field rules that types alone cannot express.

Each rule yields ``(key path, message, hint)``; :mod:`stackctl.spec.load` adds the file.
Rules run on a spec that structured (possibly after the loader set aside the values that
did not), so they can rely on the types.
"""

from __future__ import annotations

import difflib
import posixpath
import ipaddress
import re
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Union

if TYPE_CHECKING:
    import networkx as nx

from stackctl.spec import options
from stackctl.spec.model import DEFAULT_NETWORK, Group, Stack
from stackctl.spec.ports import PortBinding
from stackctl.spec.sysctls import name_problem, value_problem
from stackctl.spec.units import SIZE_HINT, UnitError, parse_size

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
# Docker allows at most one mode of each kind (volume/mounts/validate: "invalid mode").
_MODE_KINDS = (("access", {"ro", "rw"}), ("SELinux label", {"z", "Z"}), ("copy", {"nocopy"}),
               ("consistency", {"consistent", "cached", "delegated"}),
               ("propagation", {"shared", "rshared", "slave", "rslave", "private", "rprivate"}))
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
        *_networks(stack),
        *_volume_tables(stack),
        *_group_settings(stack),
        *_group_depends_on(stack),
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
def image_problem(image: str) -> Optional[str]:
    """Why ``image`` is not a valid image reference; None when it is."""
    if not image.strip():
        return "the image is empty"
    if not IMAGE_RE.fullmatch(image) or len(image.split("@")[0].split(":")[0]) > 255:
        return f"{image!r} is not a valid image reference"
    return None


def _image(image: str, path: KeyPath) -> Iterator[Found]:
    problem = image_problem(image)
    if problem:
        yield path, problem, ("name an image, e.g. 'nginx:1.27'" if not image.strip() else
                              "write [REGISTRY/]NAME[:TAG][@DIGEST] with a lower-case NAME, "
                              "e.g. 'nginx:1.27'")


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
        for key, value in group.sysctls.items():
            problem = name_problem(key) or value_problem(key, value)
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
def _container_path(path: str) -> str:
    """An absolute container path as the runtime resolves it: '/data/./' and '//data'
    are '/data'."""
    return "/" + posixpath.normpath(path).lstrip("/")


def volume_problem(spec: str) -> Optional[tuple[str, str]]:
    """Why a volume string is malformed, as (message, hint); None when it is fine."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        return f"cannot read volume {spec!r}", _VOLUME_HINT
    source, target = parts[0], parts[1]
    if not target.startswith("/"):
        return f"container path {target!r} in {spec!r} is not absolute", _VOLUME_HINT
    if _container_path(target) == "/":
        return f"{spec!r} mounts over the container's root", "mount on a directory below '/'"
    if not _is_path(source) and not VOLUME_NAME_RE.fullmatch(source):
        return (f"volume source {source!r} is neither a host path nor a volume name",
                "use an absolute host path, a path relative to the spec file starting with "
                "'./' or '../', or the name of a volume declared in [volumes]")
    target = _container_path(target)
    if target == "/proc" or target.startswith("/proc/"):
        return (f"{spec!r} mounts under /proc, which the container runtime refuses",
                "mount it somewhere else; kernel settings of the group go in its sysctls")
    if len(parts) == 3:
        modes = parts[2].split(",")
        bad = set(modes) - VOLUME_MODES
        if bad:
            return (f"unknown volume mode {','.join(sorted(bad))!r} in {spec!r}",
                    "use ro or rw, optionally with z, Z or a propagation mode such as rshared")
        for kind, members in _MODE_KINDS:
            given = [m for m in modes if m in members]
            if len(given) > 1:
                return (f"volume modes {','.join(given)!r} in {spec!r} contradict each other",
                        f"give at most one {kind} mode")
        if "nocopy" in modes and _is_path(source):
            return (f"mode 'nocopy' in {spec!r} applies only to named volumes",
                    "remove it: a host path is never copied into")
    return None


def _is_path(source: str) -> bool:
    """A bind mount's source: absolute, or relative to the spec file as Compose writes it."""
    return source.startswith(("/", "./", "../")) or source in (".", "..")


def _volumes(stack: Stack, volumes: tuple[str, ...], mpath: KeyPath) -> Iterator[Found]:
    targets: dict[str, int] = {}
    for i, volume in enumerate(volumes):
        problem = volume_problem(volume)
        if problem:
            yield mpath + ("volumes", i), problem[0], problem[1]
            continue
        source = volume.split(":")[0]
        if not _is_path(source) and source not in stack.volumes:
            close = difflib.get_close_matches(source, sorted(stack.volumes), n=1, cutoff=0.6)
            hint = (f"did you mean {close[0]!r}?" if close else
                    f"declare it with a [volumes.{source}] table, or write a host path: "
                    "absolute, or relative to the spec file starting with './'")
            yield mpath + ("volumes", i), f"named volume {source!r} is not declared", hint
            continue
        target = _container_path(volume.split(":")[1])
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
            yield from _volumes(stack, member.volumes, mpath)
            for key, value in member.environment.items():
                if not key or "=" in key or "\0" in key:
                    yield (mpath + ("environment", key), f"invalid variable name {key!r}",
                           "variable names cannot be empty or contain '=' or NUL")
                elif "\0" in value:
                    yield (mpath + ("environment", key), "the value contains a NUL character, "
                           "which no process environment can hold",
                           "remove the \\u0000 from the value")
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


# ----------------------------------------------------------------- networks, volumes
def _networks(stack: Stack) -> Iterator[Found]:
    for name, net in stack.networks.items():
        npath: KeyPath = ("networks", name)
        if name == DEFAULT_NETWORK:
            yield (npath, "'default' is the stack's own network: it always exists and is not "
                   "declared", "remove [networks.default]; to use a network that exists "
                   "already, declare it under another name with external = true and name")
            continue
        yield from _name("network", name, npath)
        if net.external:
            if not net.name:
                yield (npath, "an external network needs the name it has on the engine",
                       f'add it, e.g. name = "{name}"')
            for key in ("internal", "subnet"):
                if getattr(net, key):
                    yield (npath + (key,), f"{key!r} cannot be set on an external network: "
                           "stackctl does not create it", f"remove {key}, or remove "
                           "external = true to have stackctl create the network")
        elif net.subnet is not None:
            yield from _subnet(net.subnet, npath + ("subnet",))
    for gname, group in stack.groups.items():
        gpath: KeyPath = ("groups", gname)
        declared = sorted({DEFAULT_NETWORK} | set(stack.networks))
        seen: set[str] = set()
        for i, name in enumerate(group.networks):
            if name in seen:
                yield gpath + ("networks", i), f"{name!r} is listed twice", "remove one of them"
            elif name not in stack.networks and name != DEFAULT_NETWORK:
                close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
                hint = (f"did you mean {close[0]!r}?" if close else
                        f"declare it: [networks.{name}], or use one of: {', '.join(declared)}")
                yield gpath + ("networks", i), f"unknown network {name!r}", hint
            seen.add(name)
        internal = [n for n in group.networks if n in stack.networks
                    and stack.networks[n].internal and not stack.networks[n].external]
        if group.ports and group.networks and len(internal) == len(group.networks):
            yield (gpath + ("ports",), "the group is only on internal networks, from which "
                   "the engine publishes no port", "add a network with a route out, e.g. "
                   "\"default\", to networks, or remove ports")
        if not group.networks and group.ports:
            yield (gpath + ("networks",), "networks = [] leaves the group on loopback only, "
                   "where ports cannot be published", "join a network, e.g. networks = "
                   "[\"default\"], or remove ports")


def _subnet(text: str, path: KeyPath) -> Iterator[Found]:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            fixed = str(ipaddress.ip_network(text, strict=False))
            hint = f"did you mean {fixed!r}? A subnet is written with its first address"
        except ValueError:
            fixed, hint = "", "write an IPv4 or IPv6 network in CIDR notation, e.g. '10.40.0.0/24'"
        yield path, (f"{text!r} is not a subnet: it has host bits set" if fixed else
                     f"{text!r} is not a subnet in CIDR notation"), hint


def _volume_tables(stack: Stack) -> Iterator[Found]:
    for name, vol in stack.volumes.items():
        vpath: KeyPath = ("volumes", name)
        yield from _name("volume", name, vpath)
        if vol.external:
            if not vol.name:
                yield (vpath, "an external volume needs the name it has on the engine",
                       f'add it, e.g. name = "{name}"')
            if vol.driver != "local" or vol.driver_opts:
                yield (vpath, "driver and driver_opts cannot be set on an external volume: "
                       "stackctl does not create it", "remove them, or remove external = true to "
                       "have stackctl create the volume")
        for key in vol.labels:
            if key.startswith("stackctl."):
                yield (vpath + ("labels", key), f"label {key!r} is in the reserved stackctl. "
                       "namespace", "choose another prefix, e.g. com.example.")


# ------------------------------------------------------------------- group settings
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _hostname_ok(name: str, limit: int = 253) -> bool:
    return 0 < len(name) <= limit and all(_HOST_LABEL.fullmatch(p) for p in name.split("."))


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _extra_host(text: str) -> Optional[str]:
    """Why an extra_hosts entry is malformed; None when it is fine."""
    host, sep, ip = text.partition(":")
    if not sep:
        host, sep, ip = text.partition("=")
    if not sep or not host or not ip:
        return f"cannot read extra host {text!r}"
    if not _hostname_ok(host):
        return f"{host!r} in {text!r} is not a valid host name"
    address = ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip
    if address != "host-gateway" and not _ip_ok(address):
        return f"{ip!r} in {text!r} is not an IP address"
    return None


def _group_settings(stack: Stack) -> Iterator[Found]:
    for gname, group in stack.groups.items():
        gpath: KeyPath = ("groups", gname)
        if group.hostname is not None and not _hostname_ok(group.hostname, 63):
            yield (gpath + ("hostname",), f"{group.hostname!r} is not a valid host name",
                   "use at most 63 of letters, digits, '-' and '.', each dot-separated part "
                   "starting and ending with a letter or digit, as RFC 1123 says")
        for i, server in enumerate(group.dns):
            if not _ip_ok(server):
                yield (gpath + ("dns", i), f"DNS server {server!r} is not an IP address",
                       "write the server's IPv4 or IPv6 address, e.g. '1.1.1.1'")
        for i, domain in enumerate(group.dns_search):
            if domain != "." and not _hostname_ok(domain.rstrip(".")):
                yield (gpath + ("dns_search", i), f"{domain!r} is not a domain name",
                       "write a domain such as 'example.internal'")
        for i, entry in enumerate(group.extra_hosts):
            problem = _extra_host(entry)
            if problem:
                yield (gpath + ("extra_hosts", i), problem, "write 'HOST:IP', e.g. "
                       "'db.legacy:10.0.0.5', '[::1]' for IPv6, or 'HOST:host-gateway'")
        if group.shm_size is not None:
            try:
                if parse_size(group.shm_size) <= 0:
                    yield (gpath + ("shm_size",), "shm_size must be more than 0 bytes",
                           SIZE_HINT)
            except UnitError as exc:
                yield gpath + ("shm_size",), str(exc), SIZE_HINT


def _group_depends_on(stack: Stack) -> Iterator[Found]:
    edges: list[tuple[str, str]] = []
    for gname, group in stack.groups.items():
        dpath: KeyPath = ("groups", gname, "depends_on")
        listed: set[str] = set()
        for i, dep in enumerate(group.depends_on):
            if dep == gname:
                yield dpath + (i,), "a group cannot depend on itself", "remove it"
            elif dep in listed:
                yield dpath + (i,), f"{dep!r} is listed twice", "remove one of them"
            elif dep not in stack.groups:
                others = sorted(g for g in stack.groups if g != gname)
                close = difflib.get_close_matches(dep, others, n=1, cutoff=0.6)
                hint = (f"did you mean {close[0]!r}?" if close else
                        f"groups of this stack: {', '.join(others)}" if others else
                        "this stack has no other group")
                yield dpath + (i,), f"unknown group {dep!r}", hint
            else:
                edges.append((gname, dep))
            listed.add(dep)
    if edges:
        import networkx as nx

        graph: nx.DiGraph[str] = nx.DiGraph(edges)
        components = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
        for component in sorted(components):
            start = component[0]
            order = [u for u, _ in nx.find_cycle(graph.subgraph(component), start)]
            i = order.index(start) if start in order else 0
            order = order[i:] + order[:i]
            index = stack.groups[order[0]].depends_on.index(order[1 % len(order)])
            yield (("groups", order[0], "depends_on", index),
                   "depends_on forms a cycle across groups: " + " -> ".join([*order, order[0]]),
                   "'a -> b' means group a starts after group b: remove one of these dependencies")
