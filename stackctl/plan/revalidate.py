"""A saved plan is input like a spec: every resource in it is checked again, with the
spec's own rules, before anything of it reaches the engine.

``plan --out`` writes the desired resources into the plan file, and ``apply FILE`` acts
on them without reading the spec again. A plan file can be edited between the two, so
it is not trusted: names, images, ports, mounts, environment, sysctls (names *and*
values), networks, volumes and every member option must be what validation would have
accepted, each resource must sit at the address and engine name its stack, group and
member give it, and the owner a helper or member joins must be its own group's. Every
key of a resource's ``config`` and ``extra`` is known here: an unknown key is refused,
so a key added later cannot reach the engine unchecked. Containers, networks and volumes
the plan acts on are checked against a fresh observe by
:func:`stackctl.plan.file.check_current`.

What protects the host through what the checks here must let through:

* a declared network or volume may carry any engine name (the spec's ``name``), so a
  name is checked for syntax only; the engine refuses to create a network whose name
  is taken (``check_duplicate``), and every network or volume removed must carry this
  stack's label (``check_current``, then the engine adapter);
* an owner's DNS aliases are only its group's own names (``GROUP``, ``MEMBER.GROUP``),
  so an edited plan cannot make a group answer for another group's name;
* a member's env files (``extra.env_files``) may name any absolute path, as a spec may.
  Apply reads the file again and refuses to go on unless its parsed content has the
  digest recorded in the plan (:mod:`stackctl.spec.envfile`). Pointing a plan at a file
  one cannot read therefore needs that file's digest, which only its content gives; a
  file one can read gives nothing one did not have.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterator, Mapping, Optional

from stackctl.member_config import IN_PLACE, signal_name
from stackctl.plan.model import Change, Plan
from stackctl.resources import OWNER_RESTART, Resource, Role, address, container_name
from stackctl.spec.model import DEFAULT_NETWORK, PULL_POLICIES, RESTART_POLICIES
from stackctl.spec.options import (
    _USER, CAPABILITIES, MIN_MEMORY, UNMASKING_CAPABILITIES, _device, _health_test, _security_opt,
    _signal, _tmpfs, _ulimit, capability)
from stackctl.spec.ports import PortSyntaxError, parse_port
from stackctl.spec.rules import (
    NAME_RE, VOLUME_NAME_RE, _extra_host, _hostname_ok, _ip_ok, image_problem, volume_problem)
from stackctl.spec.sysctls import name_problem, normalize_value, token_problem, value_problem

_ID_HEX = frozenset("0123456789abcdef")
_DIGEST = re.compile(r"sha256:[0-9a-f]{16}")  # stackctl.spec.envfile.digest()
# What the engine takes as a network name (moby's restricted name rule).
_ENGINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a line break would add a resolv.conf line

# The keys each role's config and extra may hold: what stackctl.resources and
# stackctl.member_config write, and nothing else.
_OWNER_CONFIG = {"image", "command", "ports", "hostname", "dns", "dns_search", "dns_opt",
                 "extra_hosts", "shm_size", "network_mode"}
_MEMBER_CONFIG = {"image", "command", "entrypoint", "environment", "volumes", "restart", "init",
                  "env_file", "user", "working_dir", "read_only", "tmpfs", "cap_add", "cap_drop",
                  "devices", "ulimits", "mem_limit", "cpus", "pids_limit", "labels",
                  "stop_signal", "stop_grace_period", "healthcheck", "logging", "security_opt"}
_KEYS: dict[Role, tuple[set[str], set[str]]] = {
    Role.NETWORK: ({"driver", "internal", "subnet"}, set()),
    Role.VOLUME: ({"driver", "driver_opts", "labels"}, set()),
    Role.OWNER: (_OWNER_CONFIG, {"sysctls", "restart", "networks"}),
    Role.HELPER: ({"sysctls"}, {"image", "owner"}),
    Role.MEMBER: (_MEMBER_CONFIG, {"owner", "pull_policy", "env_files", "waits_for",
                                   "external_volumes"}),
}
_KINDS = {Role.NETWORK: "network", Role.VOLUME: "volume"}


def _name(kind: str, value: Any) -> Iterator[str]:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        yield f"invalid {kind} name {value!r}"


def _image(where: str, value: Any) -> Iterator[str]:
    if not isinstance(value, str):
        yield f"{where}: image {value!r} is not a string"
        return
    problem = image_problem(value)
    if problem:
        yield f"{where}: {problem}"


def _strings(where: str, value: Any, optional: bool = False) -> Iterator[str]:
    if value is None and optional:
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        yield f"{where}: expected a list of strings, got {value!r}"


def _table(where: str, value: Any) -> Iterator[str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        yield f"{where}: expected a table of strings, got {value!r}"


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _labels(where: str, value: Any) -> Iterator[str]:
    yield from _table(where, value)
    for key in value if isinstance(value, dict) else ():
        if isinstance(key, str) and key.lower().startswith("stackctl."):
            yield f"{where}: label {key!r} is in the reserved stackctl. namespace"
        elif isinstance(key, str) and not key.strip():
            yield f"{where}: a label name is empty"


def _found(where: str, found: Iterator[tuple[Any, str, str]]) -> Iterator[str]:
    """The spec's rules (``(key path, message, hint)``) as plan problems."""
    yield from (f"{where}: {message}" for _, message, _ in found)


def sysctl_problems(where: str, sysctls: Any) -> Iterator[str]:
    """The spec's rules for a group's sysctls: names, and values as the kernel takes them."""
    if not isinstance(sysctls, dict):
        yield f"{where}: expected a table of sysctls, got {sysctls!r}"
        return
    for key, value in sysctls.items():
        problem = name_problem(key) if isinstance(key, str) else ("not a string", "")
        if problem:
            yield f"{where}[{key!r}]: {problem[0]}"
            continue
        if not isinstance(value, str) or not value or normalize_value(value) != value:
            yield f"{where}[{key!r}]: {value!r} is not a normalized sysctl value"
            continue
        problem = next((p for p in map(token_problem, value.split()) if p), None)
        problem = problem or value_problem(key, value)
        if problem:
            yield f"{where}[{key!r}]: {problem[0]}"


def _restart(where: str, value: Any) -> Iterator[str]:
    if value not in RESTART_POLICIES:
        yield f"{where}: unknown restart policy {value!r}"


# ------------------------------------------------------------------ networks, volumes
def _network(where: str, r: Resource, stack: str, names: Mapping[str, str]) -> Iterator[str]:
    c = r.config
    if c.get("driver") != "bridge":
        yield f"{where}.driver: {c.get('driver')!r}, where stackctl creates 'bridge' networks"
    if not isinstance(c.get("internal"), bool):
        yield f"{where}.internal: {c.get('internal')!r} is not true or false"
    subnet = c.get("subnet")
    if subnet is not None:
        try:
            ipaddress.ip_network(subnet, strict=True)
        except (TypeError, ValueError):
            yield f"{where}.subnet: {subnet!r} is not a subnet in CIDR notation"
    # The default network is the stack's own name; another one <stack>-<name> unless the
    # spec declares its name (which only the engine's duplicate check can hold to).
    if r.group == DEFAULT_NETWORK and r.name != stack:
        yield f"{where}: network name {r.name!r}, where stack {stack!r} names its default network {stack!r}"
    elif not isinstance(r.name, str) or not _ENGINE_NAME.fullmatch(r.name):
        yield f"{where}: {r.name!r} is not a network name"


def _volume(where: str, r: Resource, stack: str, names: Mapping[str, str]) -> Iterator[str]:
    c = r.config
    if not isinstance(c.get("driver"), str) or not c["driver"].strip():
        yield f"{where}.driver: {c.get('driver')!r} is not a volume driver"
    yield from _table(f"{where}.driver_opts", c.get("driver_opts"))
    yield from _labels(f"{where}.labels", c.get("labels"))
    if not isinstance(r.name, str) or not VOLUME_NAME_RE.fullmatch(r.name):
        yield f"{where}: {r.name!r} is not a volume name"


# ---------------------------------------------------------------------------- owners
def _alias_problem(group: str, alias: Any) -> Optional[str]:
    """An owner answers on its networks for its group's name and its members' only."""
    if alias == group:
        return None
    member, dot, rest = alias.partition(".") if isinstance(alias, str) else ("", "", "")
    if dot and rest == group and NAME_RE.fullmatch(member):
        return None
    return (f"DNS alias {alias!r} is not a name of group {group!r} (only {group!r} and "
            f"MEMBER.{group} are)")


def _owner_networks(where: str, r: Resource, names: Mapping[str, str]) -> Iterator[str]:
    networks = r.extra.get("networks", [])
    if not isinstance(networks, list):
        yield f"{where} networks: expected a list, got {networks!r}"
        return
    managed = []
    for entry in networks:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], list)):
            yield f"{where} networks: {entry!r} is not [network name, aliases, address]"
            continue
        name, aliases, addr = entry
        if not _ENGINE_NAME.fullmatch(name):
            yield f"{where} networks: {name!r} is not a network name"
        for alias in aliases:
            problem = _alias_problem(r.group, alias)
            if problem:
                yield f"{where} networks[{name!r}]: {problem}"
        if addr is None:
            continue  # an external network: the spec names it freely
        base, dot, net = addr.partition(".") if isinstance(addr, str) else ("", "", "")
        if base != Role.NETWORK.value or not dot or not NAME_RE.fullmatch(net):
            yield f"{where} networks[{name!r}]: {addr!r} is not a network address"
            continue
        managed.append(addr)
        if addr in names and names[addr] != name:
            yield (f"{where} networks: {name!r} is at {addr}, which the plan names "
                   f"{names[addr]!r}")
    if list(r.depends_on) != managed:
        yield (f"{where}: depends on {list(r.depends_on)!r}, not on the networks it joins "
               f"({managed!r})")
    if r.config.get("network_mode") == "none" and networks:
        yield f"{where}: network_mode 'none' with networks to join"


def _owner(where: str, r: Resource, stack: str, names: Mapping[str, str]) -> Iterator[str]:
    c, x = r.config, r.extra
    yield from _image(f"{where}.image", c.get("image"))
    yield from _strings(f"{where}.command", c.get("command"))
    ports = c.get("ports")
    if not isinstance(ports, list):
        yield f"{where}.ports: expected a list, got {ports!r}"
        ports = []
    for text in ports:
        try:
            if not isinstance(text, str) or str(parse_port(text)) != text:
                yield f"{where}.ports: {text!r} is not a port as validation writes it"
        except PortSyntaxError as exc:
            yield f"{where}.ports: {exc}"
    hostname = c.get("hostname")
    if hostname is not None and not (isinstance(hostname, str) and _hostname_ok(hostname, 63)):
        yield f"{where}.hostname: {hostname!r} is not a valid host name (RFC 1123)"
    for key in ("dns", "dns_search", "dns_opt", "extra_hosts"):
        yield from _strings(f"{where}.{key}", c.get(key, []))
    for server in c.get("dns", []) if isinstance(c.get("dns"), list) else ():
        if isinstance(server, str) and not _ip_ok(server):
            yield f"{where}.dns: DNS server {server!r} is not an IP address"
    for domain in c.get("dns_search", []) if isinstance(c.get("dns_search"), list) else ():
        if isinstance(domain, str) and domain != "." and not _hostname_ok(domain.rstrip(".")):
            yield f"{where}.dns_search: {domain!r} is not a domain name"
    for opt in c.get("dns_opt", []) if isinstance(c.get("dns_opt"), list) else ():
        if isinstance(opt, str) and (not opt or _CONTROL.search(opt)):
            yield f"{where}.dns_opt: {opt!r} is not a resolver option"
    for entry in c.get("extra_hosts", []) if isinstance(c.get("extra_hosts"), list) else ():
        problem = _extra_host(entry) if isinstance(entry, str) else None
        if problem:
            yield f"{where}.extra_hosts: {problem}"
    shm = c.get("shm_size")
    if shm is not None and not (_int(shm) and shm > 0):
        yield f"{where}.shm_size: {shm!r} is not a size in bytes"
    if c.get("network_mode", "none") != "none":
        yield f"{where}.network_mode: {c['network_mode']!r}, where only 'none' is written"
    yield from sysctl_problems(f"{where} sysctls", x.get("sysctls", {}))
    yield from _restart(f"{where} restart", x.get("restart", OWNER_RESTART))
    yield from _owner_networks(where, r, names)


def _helper(where: str, r: Resource, stack: str, names: Mapping[str, str]) -> Iterator[str]:
    yield from sysctl_problems(f"{where}.sysctls", r.config.get("sysctls"))
    yield from _image(f"{where} helper image", r.extra.get("image"))
    if r.depends_on != (address(Role.OWNER, r.group),):
        yield f"{where}: depends on {list(r.depends_on)!r}, not on its owner only"


# --------------------------------------------------------------------------- members
def _member_options(where: str, c: dict[str, Any]) -> Iterator[str]:
    """The spec's rules (stackctl.spec.options) for the options as member_config writes
    them: normalized names, sizes in bytes, durations in nanoseconds (seconds for
    stop_grace_period)."""
    if not isinstance(c.get("init"), bool):
        yield f"{where}.init: {c.get('init')!r} is not true or false"
    if "user" in c and not (isinstance(c["user"], str) and _USER.fullmatch(c["user"])):
        yield f"{where}.user: {c['user']!r} is not a user"
    if "working_dir" in c and not (isinstance(c["working_dir"], str)
                                   and c["working_dir"].startswith("/")):
        yield f"{where}.working_dir: {c['working_dir']!r} is not an absolute path"
    if "read_only" in c and c["read_only"] is not True:
        yield f"{where}.read_only: {c['read_only']!r} is not true"
    for key in ("cap_add", "cap_drop"):
        caps = c.get(key, [])
        yield from _strings(f"{where}.{key}", caps)
        for cap in caps if isinstance(caps, list) else ():
            if not isinstance(cap, str):
                continue
            if capability(cap) != cap or (cap != "ALL" and cap not in CAPABILITIES):
                yield f"{where}.{key}: {cap!r} is not a capability as validation writes it"
            elif key == "cap_add" and cap in UNMASKING_CAPABILITIES:
                yield (f"{where}.cap_add: {cap!r} is refused on a member: with it a process "
                       "can remount /proc/sys read-write and rewrite host-wide sysctls")
    for key, rule in (("devices", _device), ("security_opt", _security_opt)):
        values = c.get(key, [])
        yield from _strings(f"{where}.{key}", values)
        for value in values if isinstance(values, list) else ():
            if isinstance(value, str):
                yield from _found(f"{where}.{key}", rule(value, ()))
    tmpfs = c.get("tmpfs", [])
    yield from _strings(f"{where}.tmpfs", tmpfs)
    if isinstance(tmpfs, list) and all(isinstance(t, str) for t in tmpfs):
        yield from _found(f"{where}.tmpfs", _tmpfs(tuple(tmpfs), ()))
    ulimits = c.get("ulimits", {})
    if not isinstance(ulimits, dict):
        yield f"{where}.ulimits: expected a table, got {ulimits!r}"
        ulimits = {}
    for name, limit in ulimits.items():
        if not (isinstance(limit, dict) and set(limit) == {"soft", "hard"}
                and _int(limit["soft"]) and _int(limit["hard"])):
            yield f"{where}.ulimits[{name!r}]: {limit!r} is not {{soft, hard}} numbers"
        else:
            yield from _found(f"{where}.ulimits", _ulimit(str(name), limit["soft"], limit["hard"], ()))
    yield from _limits(where, c)
    if "labels" in c:
        yield from _labels(f"{where}.labels", c["labels"])
    if "stop_signal" in c:
        sig = c["stop_signal"]
        if not isinstance(sig, str) or signal_name(sig) != sig:
            yield f"{where}.stop_signal: {sig!r} is not a signal as validation writes it"
        else:
            yield from _found(f"{where}.stop_signal", _signal(sig, ()))
    if "stop_grace_period" in c and not (_int(c["stop_grace_period"]) and c["stop_grace_period"] >= 0):
        yield f"{where}.stop_grace_period: {c['stop_grace_period']!r} is not a number of seconds"
    if "healthcheck" in c:
        yield from _healthcheck(f"{where}.healthcheck", c["healthcheck"])
    if "logging" in c:
        log = c["logging"]
        if not (isinstance(log, dict) and set(log) == {"driver", "options"}
                and (log["driver"] is None or (isinstance(log["driver"], str) and log["driver"].strip()))):
            yield f"{where}.logging: {log!r} is not {{driver, options}}"
        else:
            yield from _table(f"{where}.logging.options", log["options"])


def _limits(where: str, c: Mapping[str, Any]) -> Iterator[str]:
    """mem_limit, cpus and pids_limit as member_config writes them (also what an
    in-place update may set)."""
    mem, cpus, pids = c.get("mem_limit"), c.get("cpus"), c.get("pids_limit")
    if mem is not None and not (_int(mem) and mem >= MIN_MEMORY):
        yield f"{where}.mem_limit: {mem!r} is not a memory limit in bytes of at least 6m"
    if cpus is not None and not (isinstance(cpus, (int, float)) and not isinstance(cpus, bool)
                                 and 0 < cpus < 1e6):
        yield f"{where}.cpus: {cpus!r} is not a positive number of CPUs"
    if pids is not None and not (_int(pids) and pids >= 1):
        yield f"{where}.pids_limit: {pids!r} is not a number of processes of at least 1"


def _healthcheck(where: str, h: Any) -> Iterator[str]:
    keys = {"test", "interval", "timeout", "start_period", "start_interval", "retries"}
    if not isinstance(h, dict) or not set(h) <= keys:
        yield f"{where}: {h!r} is not a health check as validation writes it"
        return
    if "test" in h:
        test = h["test"]
        if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
            yield f"{where}.test: expected a list of strings, got {test!r}"
        else:
            yield from _found(f"{where}.test", _health_test(tuple(test), ()))
    for key in ("interval", "timeout", "start_period", "start_interval"):
        value = h.get(key, 0)
        least = 0 if key == "start_period" else 10 ** 6
        if not (_int(value) and (value == 0 or value >= least)):
            yield f"{where}.{key}: {value!r} is not a duration in nanoseconds"
    if not (_int(h.get("retries", 0)) and h.get("retries", 0) >= 0):
        yield f"{where}.retries: {h['retries']!r} is not 0 or more"


def _env_files(where: str, r: Resource) -> Iterator[str]:
    config, extra = r.config.get("env_file", []), r.extra.get("env_files", [])
    if not (isinstance(config, list) and all(
            isinstance(e, dict) and set(e) == {"path", "content"} and isinstance(e["path"], str)
            and isinstance(e["content"], str) and _DIGEST.fullmatch(e["content"])
            for e in config)):
        yield f"{where}.env_file: not a list of {{path, content digest}}"
        return
    if not (isinstance(extra, list) and all(
            isinstance(e, dict) and set(e) == {"path", "digest"} and isinstance(e["path"], str)
            and e["path"].startswith("/") and "\0" not in e["path"]
            and isinstance(e["digest"], str) and _DIGEST.fullmatch(e["digest"])
            for e in extra)):
        yield f"{where} env_files: not a list of {{absolute path, digest}}"
        return
    if [e["content"] for e in config] != [e["digest"] for e in extra]:
        yield f"{where} env_files: the digests differ from the member's env_file"


def _member(where: str, r: Resource, stack: str, names: Mapping[str, str]) -> Iterator[str]:
    c, x = r.config, r.extra
    yield from _image(f"{where}.image", c.get("image"))
    yield from _strings(f"{where}.command", c.get("command"), optional=True)
    yield from _strings(f"{where}.entrypoint", c.get("entrypoint"), optional=True)
    volumes = c.get("volumes", [])
    yield from _strings(f"{where}.volumes", volumes)
    for v in volumes if isinstance(volumes, list) else []:
        problem = volume_problem(v) if isinstance(v, str) else None
        if problem:
            yield f"{where}.volumes: {problem[0]}"
    env = c.get("environment", {})
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and "=" not in k
            and "\0" not in k + v for k, v in env.items()):
        yield f"{where}.environment: not a table of valid variables"
    yield from _restart(f"{where}.restart", c.get("restart"))
    yield from _member_options(where, c)
    yield from _env_files(where, r)
    if x.get("pull_policy", "missing") not in PULL_POLICIES:
        yield f"{where}: unknown pull_policy {x.get('pull_policy')!r}"
    external = x.get("external_volumes", [])
    yield from _strings(f"{where} external_volumes", external)
    for name in external if isinstance(external, list) else ():
        if isinstance(name, str) and not VOLUME_NAME_RE.fullmatch(name):
            yield f"{where} external_volumes: {name!r} is not a volume name"
    # A named volume mounted is one the spec declares: a stack volume the member depends
    # on (by the engine name the plan gives it), or an external one it lists.
    declared = set(external) if isinstance(external, list) else set()
    for dep in r.depends_on:
        if dep.startswith(f"{Role.VOLUME.value}."):
            declared.add(names.get(dep, f"{stack}-{dep.partition('.')[2]}"))
    for v in volumes if isinstance(volumes, list) else []:
        source = v.split(":")[0] if isinstance(v, str) else "/"
        if not source.startswith("/") and source not in declared:
            yield (f"{where}.volumes: mounts volume {source!r}, which is none of the stack's "
                   "volumes it depends on nor an external one it lists")
    # Members of other groups are waited for (health gate): each [address, container
    # name] as the stack names it, and depends_on lists exactly those.
    waits = x.get("waits_for", [])
    waited: set[str] = set()
    for w in waits if isinstance(waits, list) else [waits]:
        parts = w[0].split(".") if (isinstance(w, list) and len(w) == 2
                                    and isinstance(w[0], str)) else []
        if (len(parts) != 3 or parts[0] != Role.MEMBER.value or parts[1] == r.group
                or not all(NAME_RE.fullmatch(p) for p in parts[1:])):
            yield f"{where} waits_for: {w!r} is not [member address of another group, container name]"
            continue
        if w[1] != container_name(stack, parts[1], parts[2]):
            yield (f"{where} waits_for: {w[1]!r}, where stack {stack!r} names {w[0]} "
                   f"{container_name(stack, parts[1], parts[2])!r}")
        waited.add(w[0])
    others = set()
    for dep in r.depends_on:
        kind, _, rest = dep.partition(".")
        if dep.startswith(f"member.{r.group}.") or dep in (
                address(Role.OWNER, r.group), address(Role.HELPER, r.group)):
            continue
        if kind in (Role.NETWORK.value, Role.VOLUME.value) and NAME_RE.fullmatch(rest):
            continue
        if kind == Role.MEMBER.value:
            others.add(dep)
            if dep in waited:
                continue
        yield f"{where}: depends on {dep!r}, outside its group and not waited for"
    if waited - others:
        yield f"{where}: waits for {sorted(waited - others)!r}, which it does not depend on"


_CHECKS = {Role.OWNER: _owner, Role.HELPER: _helper, Role.MEMBER: _member,
           Role.NETWORK: _network, Role.VOLUME: _volume}


def _resource(stack: str, c: Change, r: Resource, names: Mapping[str, str]) -> Iterator[str]:
    where = c.address
    yield from (f"{where}: {p}" for p in _name(r.role.value if r.role in _KINDS else "group", r.group))
    if r.role is Role.MEMBER:
        yield from (f"{where}: {p}" for p in _name("member", r.member))
    elif r.member is not None:
        yield f"{where}: a {r.role.value} has no member name"
    if not isinstance(r.config, dict) or not isinstance(r.extra, dict):
        yield f"{where}: config and extra must be tables"
        return
    want = address(r.role, r.group, r.member)
    if r.address != want or c.address != want:
        yield f"{where}: the resource's address is {r.address!r}, its place says {want!r}"
    kind = _KINDS.get(r.role, "container")
    if c.kind != kind:
        yield f"{where}: a {r.role.value} change acts on a {c.kind!r}, not a {kind!r}"
    config_keys, extra_keys = _KEYS[r.role]
    unknown = sorted(set(r.config) - config_keys) + sorted(f"extra.{k}" for k in set(r.extra) - extra_keys)
    if unknown:
        yield f"{where}: unknown keys {', '.join(map(str, unknown))}"
    if r.role in _KINDS:
        if r.depends_on:
            yield f"{where}: a {r.role.value} depends on nothing, not {list(r.depends_on)!r}"
        yield from _CHECKS[r.role](where, r, stack, names)
        return
    name = container_name(stack, r.group, r.member, r.role)
    if r.name != name:
        yield f"{where}: container name {r.name!r}, where stack {stack!r} names it {name!r}"
    if r.role is not Role.OWNER and r.extra.get("owner") != container_name(stack, r.group):
        # The owner a helper or member joins is its own group's, and no other.
        yield (f"{where}: joins {r.extra.get('owner')!r}, not the owner of its group "
               f"({container_name(stack, r.group)})")
    yield from _CHECKS[r.role](where, r, stack, names)
    yield from _attributes(where, c, r)


def _attributes(where: str, c: Change, r: Resource) -> Iterator[str]:
    """What the applier mends in place comes from the attributes: only to the spec's values."""
    joined = {n[0]: n[1] for n in r.extra.get("networks", [])
              if isinstance(n, list) and len(n) == 3 and isinstance(n[1], list)}
    for a in c.attributes:
        if a.name == "name" and a.after != r.name:
            yield f"{where}: renames to {a.after!r}, not to its container name {r.name!r}"
        elif a.name == "restart" and a.after not in RESTART_POLICIES:
            yield f"{where}: unknown restart policy {a.after!r}"
        elif a.name == "state" and a.after != "running":
            yield f"{where}: state can only become 'running', not {a.after!r}"
        elif a.name in IN_PLACE and a.name != "restart":
            yield from _limits(f"{where} update", {a.name: a.after})
            if a.after != r.config.get(a.name):
                yield (f"{where}: updates {a.name} to {a.after!r}, not to its config's "
                       f"{r.config.get(a.name)!r}")
        elif a.name == "networks":
            if r.role is not Role.OWNER:
                yield f"{where}: only an owner joins networks"
                continue
            for side in (a.before, a.after):
                if not isinstance(side, dict) or not all(
                        isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v)
                        for k, v in side.items()):
                    yield f"{where}: networks {side!r} is not a table of alias lists"
            for net, aliases in a.after.items() if isinstance(a.after, dict) else ():
                if net not in joined:
                    yield f"{where}: joins network {net!r}, which is not one of its own"
                elif not set(aliases) <= set(joined[net]):
                    yield (f"{where}: aliases {sorted(set(aliases) - set(joined[net]))!r} on "
                           f"{net!r} are not its group's")


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _ID_HEX


def _deleted(c: Change) -> Iterator[str]:
    base, _, suffix = c.address.partition("#")
    parts = base.split(".")
    roles = ({"network"} if c.kind == "network" else {"volume"} if c.kind == "volume"
             else {"owner", "helper", "member", "unknown"})
    if c.kind not in ("container", "network", "volume"):
        yield f"{c.address}: deletes a {c.kind!r}, not a container, network or volume"
        return
    if (len(parts) != (2 if c.kind != "container" else len(parts)) or len(parts) not in (2, 3)
            or parts[0] not in roles or not all(NAME_RE.fullmatch(p) for p in parts[1:2])):
        yield f"{c.address}: not an address of a {c.kind} of this stack"
    if c.kind == "volume":
        # A volume's name is its id (see the planner's orphan_objects).
        if not isinstance(c.container_id, str) or not VOLUME_NAME_RE.fullmatch(c.container_id):
            yield f"{c.address}: a volume delete without the volume name it removes"
        elif suffix and suffix != c.container_id:
            yield f"{c.address}: the address names another volume than {c.container_id!r}"
        return
    what = "network" if c.kind == "network" else "container"
    cid = c.container_id or ""
    if not _is_id(cid):
        yield f"{c.address}: a delete without the {what} id it removes"
    elif suffix and not (cid.startswith(suffix) if what == "container"
                         else suffix == c.container_name):
        yield f"{c.address}: the address names another {what} than {cid[:12]}"


def plan_problems(plan: Plan, sysctl_keys: Mapping[str, Any],
                  helper_images: Mapping[str, Any]) -> list[str]:
    """Everything in a saved plan that validation of a spec would not have produced."""
    out = list(_name("stack", plan.stack))
    if out:
        return out  # every container name derives from it
    # The engine names of the plan's networks and volumes: an owner joins a managed
    # network by it, a member mounts a stack volume by it.
    names = {c.resource.address: c.resource.name for c in plan.changes
             if c.resource is not None and c.resource.role in (Role.NETWORK, Role.VOLUME)}
    for c in plan.changes:
        if c.resource is None:
            out += _deleted(c)
            continue
        out += _resource(plan.stack, c, c.resource, names)
        if c.container_id is None:
            continue
        if c.kind == "volume":
            if not isinstance(c.container_id, str) or not VOLUME_NAME_RE.fullmatch(c.container_id):
                out.append(f"{c.address}: {c.container_id!r} is not a volume name")
        elif not _is_id(c.container_id):
            out.append(f"{c.address}: {c.container_id!r} is not a {c.kind} id")
    for group, keys in sysctl_keys.items():
        out += (f"observe.sysctl_keys: {p}" for p in _name("group", group))
        out += (f"observe.sysctl_keys.{group}: {name_problem(k)[0]}"  # type: ignore[index]
                for k in keys if name_problem(k))
    for group, image in helper_images.items():
        out += (f"observe.helper_images: {p}" for p in _name("group", group))
        out += _image(f"observe.helper_images.{group}", image)
    return out


def first_problems(problems: list[str], limit: int = 10) -> Optional[str]:
    """The problems as lines, at most ``limit`` of them; None when there are none."""
    if not problems:
        return None
    more = len(problems) - limit
    return "\n".join(problems[:limit] + ([f"... and {more} more"] if more > 0 else []))
