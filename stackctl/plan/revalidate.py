"""A saved plan is input like a spec: every resource in it is checked again, with the
spec's own rules, before anything of it reaches the engine.

``plan --out`` writes the desired resources into the plan file, and ``apply FILE`` acts
on them without reading the spec again. A plan file can be edited between the two, so
it is not trusted: names, images, ports, mounts, environment and sysctls (names *and*
values) must be what validation would have accepted, each resource must sit at the
address and container name its stack, group and member give it, and the owner a helper
or member joins must be its own group's. Containers the plan acts on are checked
against a fresh observe by :func:`stackctl.plan.file.check_current`.

Keys that other parts of a resource's config carry and that are not checked here are
not used by the applier to decide anything about ownership.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

from stackctl.plan.model import Change, Plan
from stackctl.resources import Resource, Role, address, container_name
from stackctl.spec.model import RESTART_POLICIES
from stackctl.spec.ports import PortSyntaxError, parse_port
from stackctl.spec.rules import NAME_RE, image_problem, volume_problem
from stackctl.spec.sysctls import name_problem, normalize_value, token_problem, value_problem

_ID_HEX = frozenset("0123456789abcdef")


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


def _owner(where: str, r: Resource) -> Iterator[str]:
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
    yield from sysctl_problems(f"{where} sysctls", x.get("sysctls", {}))
    yield from _restart(f"{where} restart", x.get("restart", "no"))


def _helper(where: str, r: Resource) -> Iterator[str]:
    yield from sysctl_problems(f"{where}.sysctls", r.config.get("sysctls"))
    yield from _image(f"{where} helper image", r.extra.get("image"))


def _member(where: str, r: Resource) -> Iterator[str]:
    c = r.config
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
    for dep in r.depends_on:
        if not (dep.startswith(f"member.{r.group}.") or dep in (
                address(Role.OWNER, r.group), address(Role.HELPER, r.group))):
            yield f"{where}: depends on {dep!r}, outside its group"


_CHECKS = {Role.OWNER: _owner, Role.HELPER: _helper, Role.MEMBER: _member}


def _resource(stack: str, c: Change, r: Resource) -> Iterator[str]:
    where = c.address
    yield from (f"{where}: {p}" for p in _name("group", r.group))
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
    name = container_name(stack, r.group, r.member, r.role)
    if r.name != name:
        yield f"{where}: container name {r.name!r}, where stack {stack!r} names it {name!r}"
    if r.role is not Role.OWNER and r.extra.get("owner") != container_name(stack, r.group):
        # The owner a helper or member joins is its own group's, and no other.
        yield (f"{where}: joins {r.extra.get('owner')!r}, not the owner of its group "
               f"({container_name(stack, r.group)})")
    yield from _CHECKS[r.role](where, r)
    # What the applier mends in place comes from the attributes: only to the spec's values.
    for a in c.attributes:
        if a.name == "name" and a.after != r.name:
            yield f"{where}: renames to {a.after!r}, not to its container name {r.name!r}"
        elif a.name == "restart" and a.after not in RESTART_POLICIES:
            yield f"{where}: unknown restart policy {a.after!r}"
        elif a.name == "state" and a.after != "running":
            yield f"{where}: state can only become 'running', not {a.after!r}"


def _deleted(c: Change) -> Iterator[str]:
    base, _, short = c.address.partition("#")
    parts = base.split(".")
    if (len(parts) not in (2, 3) or parts[0] not in {r.value for r in Role} | {"unknown"}
            or not all(NAME_RE.fullmatch(p) for p in parts[1:2])):
        yield f"{c.address}: not an address of this stack"
    if not c.container_id or len(c.container_id) != 64 or not set(c.container_id) <= _ID_HEX:
        yield f"{c.address}: a delete without the container id it removes"
    elif short and not c.container_id.startswith(short):
        yield f"{c.address}: the address names another container than {c.container_id[:12]}"


def plan_problems(plan: Plan, sysctl_keys: Mapping[str, Any],
                  helper_images: Mapping[str, Any]) -> list[str]:
    """Everything in a saved plan that validation of a spec would not have produced."""
    out = list(_name("stack", plan.stack))
    if out:
        return out  # every container name derives from it
    for c in plan.changes:
        if c.resource is None:
            out += _deleted(c)
        else:
            out += _resource(plan.stack, c, c.resource)
        if c.container_id is not None and (len(c.container_id) != 64
                                           or not set(c.container_id) <= _ID_HEX):
            out.append(f"{c.address}: {c.container_id!r} is not a container id")
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
