"""A Compose project -> a stackctl spec: groups, members, networks, volumes, as TOML.

The mapping (docs/migrating.md has it key by key):

* A service that others join (``network_mode: "service:X"`` or ``"container:X"``)
  becomes group ``X``, held by the default owner; ``X`` becomes member ``X`` of it and each
  joining service a member too. The keys that configure the shared namespace (``ports``,
  ``sysctls``, ``hostname``, ``dns*``, ``extra_hosts``, ``shm_size``, ``networks``) move
  from ``X`` to the group. This is the point of converting: the namespace is held by a
  pause owner, so ``X`` (a VPN, say) can restart without stranding its neighbours.
* Every other service becomes a group of its own with one member of the same name, so
  its name keeps resolving on the stack network as it did in Compose.
* Member keys carry Compose's names and meanings and map one to one.

Nothing is dropped silently. What stackctl cannot express is a *note* (printed on stderr
and written as a comment next to the member it concerns); what would make the output
wrong is an *error* (no output, exit 1). ``${VAR}`` and ``${VAR:-default}`` stay text for
stackctl to substitute when the spec is loaded, as Compose would have."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Optional

import attrs

from stackctl.convert.base import ConvertError, suggested_name
from stackctl.convert.compose_files import ComposeProject
from stackctl.convert.compose_shape import shape_problems
from stackctl.convert.member_keys import MEMBER_ORDER, NOT_SUPPORTED, MemberKeys
from stackctl.convert.namespace_keys import NamespaceKeys
from stackctl.convert.top_level import TopLevel
from stackctl.convert.toml_out import Table, dumps
from stackctl.convert.variables import keep_variables
from stackctl.errors import Problem
from stackctl.spec.rules import NAME_RE, NAME_RULE

__all__ = ["Conversion", "ConvertError", "convert", "keep_variables", "project_name",
           "stack_name"]


@attrs.frozen
class Conversion:
    """The spec text, what was not converted, and a summary for the operator."""

    text: str
    notes: tuple[Problem, ...]
    stack: str
    groups: int
    members: int


def project_name(raw: str) -> str:
    """Compose's NormalizeProjectName: lower case, only a-z 0-9 _ -, no leading _ or -."""
    return re.sub(r"[^a-z0-9_-]", "", raw.lower()).lstrip("_-")


class _Converter(TopLevel, NamespaceKeys, MemberKeys):
    """One conversion: the mapping steps come from the mixins, the structure is here."""

    # ---------------------------------------------------------------- run
    def run(self, stack_name: str) -> Conversion:
        model = self.p.model
        for key in model:
            if key.startswith("x-") or key in ("services", "networks", "volumes", "name",
                                               "version"):
                continue
            if key in ("secrets", "configs", "models"):
                self.note(None, key, key, "not converted: " + NOT_SUPPORTED.get(
                    key, "not supported by stackctl"))
            elif key == "include":
                self.error(None, key, key, "include is not supported",
                           "convert the output of `docker compose config --no-interpolate` "
                           "instead")
            else:
                self.error(None, key, key, "not a Compose top-level key",
                           "Compose itself refuses it: remove it, or name it x-...")
        shapes = shape_problems(model)
        for path, message in shapes:  # services.web.ports[0] -> service web, key ports
            steps = re.split(r"[.\[]", path)
            service = steps[1] if steps[0] == "services" and len(steps) > 1 else None
            key = steps[2] if service is not None and len(steps) > 2 else steps[0]
            self.error(service, key, path, message, "Compose refuses it too")
        if shapes:  # the mapping below relies on these types
            raise ConvertError(self.errors)
        services = model.get("services")
        if not isinstance(services, dict) or not services:
            self.error(None, "services", "services", "no services to convert",
                       "a Compose project declares its containers under services")
            raise ConvertError(self.errors)
        self.names = self._names(services)
        networks, net_names = self._networks(model.get("networks") or {})
        self.net_names = net_names
        volumes, vol_names = self._volumes(model.get("volumes") or {})
        self.vol_names = vol_names
        roots = self._roots(services)
        tables = self._groups(services, roots)
        if self.errors:
            raise ConvertError(self.errors)
        for service, table in self.member_tables.items():
            table.comments += self.service_notes.get(service, [])

        dotenv = self.p.project_dir / ".env"
        if dotenv.is_file() and any("${" in repr(t.values) for t in tables):
            self.note(None, ".env", ".env", "not converted: Compose reads the variables of "
                      "the project's .env file; stackctl reads the environment of "
                      "`stackctl plan` and `apply` only", "export them first, e.g. "
                      "set -a; . ./.env; set +a")
        head = [f"Converted by `stackctl convert` from {', '.join(self.p.files)}.",
                "See docs/migrating.md for how each Compose key maps."]
        if self.head_notes:
            head += ["", "Not converted:"] + [f"  {n}" for n in self.head_notes]
        out = [Table(("stack",), {"name": stack_name})]
        out += [Table(("networks", n), v) for n, v in networks.items()]
        out += [Table(("volumes", n), v) for n, v in volumes.items()]
        out += tables
        groups = sum(1 for t in tables if len(t.path) == 2)
        return Conversion(text=dumps(head, out), notes=tuple(self.notes), stack=stack_name,
                          groups=groups, members=len(services))

    # ---------------------------------------------------------------- names
    def _names(self, services: dict[str, Any]) -> dict[str, str]:
        names: dict[str, str] = {}
        taken: dict[str, str] = {}
        for s in services:
            name = s if NAME_RE.fullmatch(s) else suggested_name(s)
            if not NAME_RE.fullmatch(name):
                self.error(s, "", f"services.{s}", f"cannot make a stackctl name of {s!r}",
                           NAME_RULE + ": rename the service")
            elif name in taken:
                self.error(s, "", f"services.{s}", f"{s!r} and {taken[name]!r} would both "
                           f"be named {name!r}", "rename one of the services")
            elif name != s:
                self.note(s, "", f"services.{s}", f"renamed to {name!r}", NAME_RULE +
                          f"; other groups reach it by {name!r}, not {s!r}")
            names[s] = name
            taken[name] = s
        return names

    # ---------------------------------------------------------------- grouping
    def _roots(self, services: dict[str, Any]) -> dict[str, str]:
        """Each service -> the service whose network namespace it ends up in."""
        container_names = {str(s.get("container_name")): n for n, s in services.items()
                           if isinstance(s, dict) and s.get("container_name")}
        joins: dict[str, str] = {}
        for name, s in services.items():
            if not isinstance(s, dict):
                self.error(name, "", f"services.{name}", "expected a mapping")
                continue
            mode = s.get("network_mode")
            path = f"services.{name}.network_mode"
            if mode is None:
                continue
            mode = str(mode)
            kind, _, target = mode.partition(":")
            if kind in ("service", "container") and target:
                other = target if kind == "service" else container_names.get(target, target)
                if other not in services:
                    what = "service" if kind == "service" else "service or container_name"
                    self.error(name, "network_mode", path, f"{other!r} is not a {what} of "
                               "this project", "stackctl can only join a namespace it holds: "
                               "add that container to the project as a service")
                    continue
                if other == name:
                    self.error(name, "network_mode", path, "a service cannot join itself")
                    continue
                joins[name] = other
            elif mode == "none":
                continue  # handled with the group's networks
            else:
                why = ("stackctl groups always have a network namespace of their own; "
                       "publish the ports the service listens on with ports"
                       if mode == "host" else "the group joins the stack's network")
                self.note(name, "network_mode", path, f"not converted: {mode!r}", why)
        self.joins = joins
        roots: dict[str, str] = {}
        for name in services:
            if not isinstance(services[name], dict):
                continue
            seen = [name]
            cur = name
            while cur in joins:
                cur = joins[cur]
                if cur in seen:
                    self.error(name, "network_mode", f"services.{name}.network_mode",
                               "network_mode forms a cycle: " + " -> ".join(seen + [cur]),
                               "one service of them must hold its own namespace")
                    break
                seen.append(cur)
            roots[name] = cur
        return roots

    def _groups(self, services: dict[str, Any], roots: dict[str, str]) -> list[Table]:
        members: dict[str, list[str]] = {}
        for name in services:
            if name in roots:
                members.setdefault(roots[name], []).append(name)
        for root in members:  # the namespace's holder first, joiners in file order
            members[root].sort(key=lambda n: (n != root, list(services).index(n)))
        tables: list[Table] = []
        member_tables = self.member_tables
        group_tables: dict[str, Table] = {}
        group_deps: dict[str, list[tuple[str, str, str]]] = {}
        for root, names in members.items():
            gname = self.names[root]
            group: dict[str, Any] = {}
            comments = [f'Group "{gname}": the namespace of Compose service "{root}"']
            if len(names) > 1:
                joined = ", ".join(f'"{n}"' for n in names if n != root)
                comments[0] = (f'Group "{gname}": the network namespace of Compose service '
                               f'"{root}", joined by {joined} (network_mode: service:{root}).')
                comments.append(f"A pause owner holds it, so {gname} can restart or be "
                                "replaced while the others keep the namespace and the ports.")
            else:
                comments[0] += "."
            self._group_keys(services, root, names, group)
            gtable = Table(("groups", gname), group, comments)
            group_tables[gname] = gtable
            tables.append(gtable)
            for n in names:
                tables.append(self._member(services, n, root, gname))
        # depends_on: members of one group, or whole groups
        for name in services:
            s = services[name]
            if name not in roots or not isinstance(s, dict):
                continue
            gname = self.names[roots[name]]
            mdeps: list[str] = []
            if name in self.joins and name in member_tables:
                # Compose starts the service whose namespace another joins before it.
                mdeps.append(self.names[self.joins[name]])
            for dep, cond in self._depends_on(name, s.get("depends_on"), services):
                if roots.get(dep) == roots[name]:
                    mdeps.append(self.names[dep])
                    if cond == "service_healthy":
                        self.note(name, "depends_on", f"services.{name}.depends_on.{dep}",
                                  "converted to member order: within a group stackctl "
                                  f"starts {self.names[dep]!r} first but does not wait for "
                                  "it to be healthy", "members of one group share a "
                                  "namespace; a member that needs another healthy can "
                                  "retry, as it must after that member restarts anyway")
                else:
                    group_deps.setdefault(gname, []).append(
                        (self.names[roots[dep]], name, f"{dep}: {cond}"))
            if mdeps and name in member_tables:
                vals = member_tables[name].values
                vals["depends_on"] = list(dict.fromkeys(mdeps))
                member_tables[name].values = {k: vals[k] for k in MEMBER_ORDER if k in vals}
        for gname, deps in group_deps.items():
            gtable = group_tables[gname]
            gtable.values["depends_on"] = list(dict.fromkeys(d for d, _, _ in deps))
            why = "; ".join(f"{svc} on {c}" for _, svc, c in deps)
            gtable.notes["depends_on"] = (
                f"From Compose depends_on ({why}). This group's members start after every "
                "member of these groups runs, and is healthy where it has a healthcheck: "
                "stackctl gates on health wherever a healthcheck exists, so "
                "service_started and service_healthy both map here.")
        self._group_cycles({g: [d for d, _, _ in deps] for g, deps in group_deps.items()})
        return tables

    def _group_cycles(self, edges: dict[str, list[str]]) -> None:
        state: dict[str, int] = {}

        def visit(g: str, trail: list[str]) -> None:
            state[g] = 1
            for d in edges.get(g, []):
                if state.get(d) == 1:
                    cycle = trail[trail.index(d):] + [g, d] if d in trail else [g, d]
                    self.error(None, "services", "services", "depends_on across groups "
                               "forms a cycle: " + " -> ".join(cycle), "in stackctl one "
                               "group waits for all members of another: break the cycle")
                elif d not in state:
                    visit(d, trail + [g])
            state[g] = 2

        for g in edges:
            if g not in state:
                visit(g, [])

    def _depends_on(self, name: str, v: Any, services: dict[str, Any]
                    ) -> list[tuple[str, str]]:
        path = f"services.{name}.depends_on"
        if v is None:
            return []
        if isinstance(v, list):
            v = {str(d): {} for d in v}
        if not isinstance(v, dict):
            self.error(name, "depends_on", path, "expected a list or a mapping")
            return []
        out: list[tuple[str, str]] = []
        for dep, opts in v.items():
            opts = opts or {}
            dpath = f"{path}.{dep}"
            if dep not in services:
                self.error(name, "depends_on", dpath, f"{dep!r} is not a service of this "
                           "project", "Compose refuses it too")
                continue
            cond = str(opts.get("condition", "service_started"))
            # Compose restarts a service that joined another's namespace when that one is
            # recreated (`docker compose config` writes restart: true on the implicit
            # dependency); stackctl's owner holds the namespace, so nothing needs it.
            if opts.get("restart") is True and self.joins.get(name) != dep:
                self.note(name, "depends_on", dpath + ".restart", "not converted: stackctl "
                          "does not restart a member when its dependency is replaced")
            if opts.get("required") is False:
                self.note(name, "depends_on", dpath + ".required", "not converted: in "
                          "stackctl a dependency is always part of the stack")
            if cond == "service_completed_successfully":
                self.note(name, "depends_on", dpath, "not converted: stackctl waits for "
                          "members that run (and are healthy), not for ones that exit",
                          "run the one-shot job before apply, or make it a long-running "
                          "member")
                continue
            if cond not in ("service_started", "service_healthy"):
                self.error(name, "depends_on", dpath, f"unknown condition {cond!r}",
                           "Compose knows service_started, service_healthy and "
                           "service_completed_successfully")
                continue
            out.append((dep, cond))
        return out


def convert(project: ComposeProject, base_dir: Path, stack: Optional[str] = None,
            env: Optional[Mapping[str, str]] = None) -> Conversion:
    """Convert a read Compose project; raise :class:`ConvertError` when it cannot be done.

    ``base_dir`` is the directory the spec will live in: relative host paths (bind
    mounts, env files) are rewritten relative to it. ``env`` gives COMPOSE_PROJECT_NAME
    and the variables of a ``name:`` that uses them, as Compose reads them.
    """
    env = {} if env is None else env
    converter = _Converter(project, base_dir)
    name = stack_name(project, stack, env)
    return converter.run(name)


def stack_name(project: ComposeProject, stack: Optional[str], env: Mapping[str, str]) -> str:
    """--stack, else COMPOSE_PROJECT_NAME, else ``name:``, else the first file's directory
    name normalised as Compose does (``My App`` -> ``myapp``)."""
    from stackctl.spec.load import interpolate

    if stack is not None:
        if not NAME_RE.fullmatch(stack):
            raise ConvertError([Problem("--stack", "", f"invalid stack name {stack!r}",
                                        NAME_RULE)])
        return stack
    source, raw = "", ""
    if env.get("COMPOSE_PROJECT_NAME"):
        source, raw = "COMPOSE_PROJECT_NAME", env["COMPOSE_PROJECT_NAME"]
    elif project.model.get("name"):
        value, unset = interpolate(str(project.model["name"]), env)
        if unset:
            raise ConvertError([Problem(project.file_of(None, "name"), "name", unset[0][1],
                                        "set it, or pass --stack NAME")])
        source, raw = "name", str(value)
    else:
        source, raw = "the directory name", project.project_dir.name
    name = project_name(raw)
    if not NAME_RE.fullmatch(name):
        raise ConvertError([Problem(project.files[0], "", f"the project name {raw!r} (from "
                                    f"{source}) is not a valid stack name",
                                    NAME_RULE + ": pass --stack NAME")])
    return name
