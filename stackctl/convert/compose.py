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
stackctl to substitute when the spec is loaded, as Compose would have.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import attrs

from stackctl.convert.compose_files import ComposeProject, to_sequence
from stackctl.convert.toml_out import Table, dumps
from stackctl.errors import Problem, StackctlError
from stackctl.spec.rules import NAME_RE, NAME_RULE


class ConvertError(StackctlError):
    """The project cannot be converted faithfully; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@attrs.frozen
class Conversion:
    """The spec text, what was not converted, and a summary for the operator."""

    text: str
    notes: tuple[Problem, ...]
    stack: str
    groups: int
    members: int


# ------------------------------------------------------------------------- variables
_COMPOSE_VAR = re.compile(r"\$(?:(\$)|\{([^{}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])(.*))?", re.S)


class _VarError(ValueError):
    """A Compose variable form that stackctl's interpolation cannot express."""


def keep_variables(text: str) -> str:
    """Compose's interpolation syntax rewritten to stackctl's, never expanded.

    ``${VAR}``, ``${VAR:-default}`` and ``$$`` are the same in both. ``$VAR`` becomes
    ``${VAR}``; ``${VAR-default}`` becomes ``${VAR:-default}`` (stackctl also uses the
    default for an empty value); ``${VAR:?message}`` becomes ``${VAR}`` (stackctl refuses
    an unset variable by itself). ``${VAR:+alternative}`` has no stackctl form: an error.
    """
    if "$" not in text:
        return text

    def replace(m: re.Match[str]) -> str:
        if m.group(1):
            return "$$"
        if m.group(3):
            return "${" + m.group(3) + "}"
        inner = _BRACED.fullmatch(m.group(2) or "")
        if not inner:
            raise _VarError(f"cannot read the variable reference {m.group(0)!r}")
        name, _colon, op, rest = inner.groups()
        if op is None:
            return "${" + name + "}"
        if op == "-":
            if "$" in rest:
                raise _VarError(f"{m.group(0)!r} has a variable in its default, which "
                                "stackctl's ${VAR:-default} cannot nest")
            return "${" + name + ":-" + rest + "}"
        if op == "?":
            return "${" + name + "}"
        raise _VarError(f"{m.group(0)!r} uses ${{VAR:+...}}, which stackctl's "
                        "interpolation does not have")

    return _COMPOSE_VAR.sub(replace, text)


def _has_variable(v: Any) -> bool:
    return isinstance(v, str) and bool(_COMPOSE_VAR.search(v)) and "$$" != v.strip()


# ------------------------------------------------------------------- Compose's keys
# Keys stackctl has no equivalent for, with why and what to do instead.
_NOT_SUPPORTED: dict[str, str] = {
    "build": "stackctl runs images and does not build them: build and tag the image "
             "first (docker compose build)",
    "container_name": "stackctl names containers STACK-GROUP-MEMBER itself",
    "links": "every member is reachable by its group's name on the stack network",
    "external_links": "join the container's network with networks instead",
    "privileged": "a member with every capability could rewrite host-wide sysctls; add "
                  "only the capabilities it needs with cap_add",
    "pid": "members share their group's network and IPC namespaces, not a PID namespace",
    "ipc": "every member shares its group's IPC namespace",
    "uts": "every member shares its group's namespaces",
    "userns_mode": "not supported by stackctl",
    "cgroup": "not supported by stackctl",
    "cgroup_parent": "not supported by stackctl",
    "secrets": "stackctl has no secrets: mount the file with volumes, or use env_file",
    "configs": "stackctl has no configs: mount the file with volumes",
    "profiles": "a stack has no profiles: the service is always part of the stack",
    "expose": "not needed: every port of a member is reachable on its group's networks",
    "domainname": "set the domain with the group's hostname",
    "mac_address": "a group does not set a MAC address",
    "platform": "stackctl runs the image the engine has for its own platform",
    "scale": "a member is one container",
    "stdin_open": "stackctl runs members detached, with no input",
    "tty": "stackctl runs members detached, without a terminal",
    "runtime": "not supported by stackctl",
    "isolation": "not supported by stackctl",
    "volumes_from": "declare the volumes on this member too",
    "group_add": "not supported by stackctl",
    "storage_opt": "not supported by stackctl",
    "device_cgroup_rules": "not supported by stackctl: list the devices with devices",
    "gpus": "not supported by stackctl",
    "credential_spec": "Windows only",
    "oom_kill_disable": "not supported by stackctl",
    "oom_score_adj": "not supported by stackctl",
    "mem_reservation": "not supported by stackctl: mem_limit is",
    "memswap_limit": "not supported by stackctl: mem_limit is",
    "mem_swappiness": "not supported by stackctl",
    "blkio_config": "not supported by stackctl",
    "cpu_count": "use cpus", "cpu_percent": "use cpus", "cpu_shares": "use cpus",
    "cpu_quota": "use cpus", "cpu_period": "use cpus", "cpu_rt_period": "not supported",
    "cpu_rt_runtime": "not supported", "cpuset": "not supported by stackctl",
    "annotations": "not supported by stackctl: use labels",
    "attach": "stackctl does not attach to output", "develop": "Compose Watch only",
    "label_file": "write the labels into labels", "models": "not supported by stackctl",
    "provider": "not supported by stackctl", "post_start": "not supported by stackctl",
    "pre_stop": "not supported by stackctl", "use_api_socket": "not supported by stackctl",
    "pull_refresh_after": "not supported by stackctl",
}

_GROUP_KEYS = ("ports", "sysctls", "networks", "hostname", "dns", "dns_search", "dns_opt",
               "extra_hosts", "shm_size")
# On a service that joins another's network, Docker itself refuses these ("conflicting
# options"), and Compose refuses networks with network_mode.
_REFUSED_ON_JOINERS = ("ports", "networks", "hostname", "dns", "dns_search", "dns_opt",
                       "extra_hosts")
_MEMBER_ORDER = ("image", "command", "entrypoint", "environment", "env_file", "volumes",
                 "restart", "init", "depends_on", "user", "working_dir", "read_only", "tmpfs",
                 "cap_add", "cap_drop", "devices", "ulimits", "mem_limit", "cpus",
                 "pids_limit", "labels", "stop_signal", "stop_grace_period", "healthcheck",
                 "logging", "security_opt", "pull_policy")
_OTHER_HANDLED = {"image", "network_mode", "depends_on", "deploy", "extends", *_GROUP_KEYS,
                  *_MEMBER_ORDER}
_TOP_KEYS = {"services", "networks", "volumes", "secrets", "configs", "name", "version",
             "include", "models"}


def _suggested(name: str) -> str:
    guess = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:40].rstrip("-_")
    return guess


def project_name(raw: str) -> str:
    """Compose's NormalizeProjectName: lower case, only a-z 0-9 _ -, no leading _ or -."""
    return re.sub(r"[^a-z0-9_-]", "", raw.lower()).lstrip("_-")


# ------------------------------------------------------------------------ converter
class _Converter:
    def __init__(self, project: ComposeProject, base_dir: Path) -> None:
        self.p = project
        self.base_dir = base_dir
        self.errors: list[Problem] = []
        self.notes: list[Problem] = []
        self.service_notes: dict[str, list[str]] = {}
        self.head_notes: list[str] = []
        self.extra_tmpfs: dict[str, list[str]] = {}  # long-syntax tmpfs volumes
        self.member_tables: dict[str, Table] = {}
        self.joins: dict[str, str] = {}  # service -> the service whose network it joins

    # ------------------------------------------------------------- reporting
    def error(self, service: Optional[str], key: str, path: str, message: str,
              hint: str = "") -> None:
        self.errors.append(Problem(self.p.file_of(service, key), path, message, hint))

    def note(self, service: Optional[str], key: str, path: str, message: str,
             hint: str = "") -> None:
        """Something not converted: on stderr, and as a comment in the output."""
        self.notes.append(Problem(self.p.file_of(service, key), path, message, hint))
        text = f"{path}: {message}" + (f" ({hint})" if hint else "")
        if service is None:
            self.head_notes.append(text)
        else:
            self.service_notes.setdefault(service, []).append(text)

    def text(self, v: Any, service: Optional[str], key: str, path: str) -> str:
        """A string value with Compose's variables kept for stackctl."""
        if isinstance(v, bool):
            return "true" if v else "false"
        s = str(v)
        try:
            return keep_variables(s)
        except _VarError as exc:
            self.error(service, key, path, str(exc), "write the value, or a ${VAR} or "
                       "${VAR:-default} reference")
            return s

    def typed(self, v: Any, kind: type, service: Optional[str], key: str, path: str) -> Any:
        """A value stackctl reads as a number or boolean: no variable can stand there."""
        if _has_variable(v):
            self.error(service, key, path, f"{v!r} is a variable, but stackctl reads {key} "
                       f"as a {'boolean' if kind is bool else 'number'}, not text",
                       "write the value itself")
            return None
        if kind is bool:
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.lower() in ("true", "false"):
                return v.lower() == "true"
        elif kind is int:
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v.strip()):
                return int(v)
        elif kind is float:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            if isinstance(v, str):
                try:
                    return float(v)
                except ValueError:
                    pass
        self.error(service, key, path, f"expected a {kind.__name__}, got {v!r}",
                   "`docker compose config` rejects it too")
        return None

    # ---------------------------------------------------------------- paths
    def rebase(self, path_text: str) -> str:
        """A host path relative to the Compose project, made relative to the output."""
        if path_text.startswith("~"):
            return "${HOME}" + path_text[1:]
        if path_text.startswith(("/", "$")):
            return path_text
        absolute = os.path.normpath(os.path.join(self.p.project_dir, path_text))
        rel = os.path.relpath(absolute, self.base_dir)
        if rel == ".":
            return "./"
        return rel if rel.startswith("../") or rel == ".." else "./" + rel

    # ---------------------------------------------------------------- run
    def run(self, stack_name: str) -> Conversion:
        model = self.p.model
        for key in model:
            if key.startswith("x-") or key in ("services", "networks", "volumes", "name",
                                               "version"):
                continue
            if key in ("secrets", "configs", "models"):
                self.note(None, key, key, "not converted: " + _NOT_SUPPORTED.get(
                    key, "not supported by stackctl"))
            elif key == "include":
                self.error(None, key, key, "include is not supported",
                           "convert the output of `docker compose config` instead")
            else:
                self.error(None, key, key, "not a Compose top-level key",
                           "Compose itself refuses it: remove it, or name it x-...")
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
            name = s if NAME_RE.fullmatch(s) else _suggested(s)
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

    def _key_name(self, kind: str, name: str) -> str:
        if NAME_RE.fullmatch(name):
            return name
        new = _suggested(name)
        if not NAME_RE.fullmatch(new):
            self.error(None, kind, f"{kind}.{name}", f"cannot make a stackctl name of "
                       f"{name!r}", NAME_RULE)
        else:
            self.note(None, kind, f"{kind}.{name}", f"renamed to {new!r}", NAME_RULE)
        return new

    # ---------------------------------------------------------------- networks
    def _networks(self, nets: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        out: dict[str, dict[str, Any]] = {}
        names: dict[str, str] = {"default": "default"}
        if not isinstance(nets, dict):
            self.error(None, "networks", "networks", "expected a mapping of networks")
            return out, names
        for name, spec in nets.items():
            path = f"networks.{name}"
            spec = spec or {}
            if name == "default":
                if any(not k.startswith("x-") for k in spec):
                    self.note(None, "networks", path, "not converted: stackctl's default "
                              "network is always the stack's own bridge",
                              "declare another network and list it in the groups' networks")
                continue
            new = self._key_name("networks", name)
            names[name] = new
            table: dict[str, Any] = {}
            for key, v in spec.items():
                kpath = f"{path}.{key}"
                if key.startswith("x-"):
                    continue
                if key == "internal":
                    table["internal"] = self.typed(v, bool, None, "networks", kpath)
                elif key == "external":
                    if isinstance(v, dict):  # the legacy form external: {name: ...}
                        table["external"] = True
                        if "name" in v:
                            table["name"] = self.text(v["name"], None, "networks", kpath)
                    else:
                        table["external"] = self.typed(v, bool, None, "networks", kpath)
                elif key == "name":
                    table["name"] = self.text(v, None, "networks", kpath)
                elif key == "driver" and v == "bridge":
                    continue
                elif key == "ipam" and isinstance(v, dict):
                    configs = v.get("config") or []
                    for i, c in enumerate(configs):
                        cpath = f"{kpath}.config[{i}]"
                        if i == 0 and isinstance(c, dict) and "subnet" in c:
                            table["subnet"] = self.text(c["subnet"], None, "networks",
                                                        cpath + ".subnet")
                        extra = [k for k in (c if isinstance(c, dict) else {}) if
                                 k != "subnet" or i > 0]
                        if extra:
                            self.note(None, "networks", cpath, "not converted: "
                                      + ", ".join(extra), "stackctl sets one subnet per "
                                      "network; Docker picks the gateway and range")
                    for k in v:
                        if k != "config":
                            self.note(None, "networks", f"{kpath}.{k}",
                                      "not converted: not supported by stackctl")
                else:
                    self.note(None, "networks", kpath, "not converted: stackctl networks "
                              "are bridges with internal, subnet, external and name only")
            if table.get("external") and "name" not in table:
                table["name"] = name  # Compose's name of an external network is its key
            out[new] = {k: table[k] for k in ("internal", "subnet", "external", "name")
                        if k in table and table[k] is not None}
        return out, names

    # ---------------------------------------------------------------- volumes
    def _volumes(self, vols: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        out: dict[str, dict[str, Any]] = {}
        names: dict[str, str] = {}
        if not isinstance(vols, dict):
            self.error(None, "volumes", "volumes", "expected a mapping of volumes")
            return out, names
        for name, spec in vols.items():
            path = f"volumes.{name}"
            new = self._key_name("volumes", name)
            names[name] = new
            table: dict[str, Any] = {}
            for key, v in (spec or {}).items():
                kpath = f"{path}.{key}"
                if key.startswith("x-"):
                    continue
                if key == "driver":
                    table["driver"] = self.text(v, None, "volumes", kpath)
                elif key == "driver_opts" and isinstance(v, dict):
                    table["driver_opts"] = {str(k): self.text(x, None, "volumes", kpath)
                                            for k, x in v.items()}
                elif key == "external":
                    if isinstance(v, dict):
                        table["external"] = True
                        if "name" in v:
                            table["name"] = self.text(v["name"], None, "volumes", kpath)
                    else:
                        table["external"] = self.typed(v, bool, None, "volumes", kpath)
                elif key == "name":
                    table["name"] = self.text(v, None, "volumes", kpath)
                elif key == "labels":
                    table["labels"] = self._kv(v, None, "volumes", kpath)
                else:
                    self.note(None, "volumes", kpath, "not converted: not supported by "
                              "stackctl")
            if table.get("external") and "name" not in table:
                table["name"] = name  # Compose's name of an external volume is its key
            out[new] = {k: table[k] for k in ("driver", "driver_opts", "external", "name",
                                              "labels") if k in table and table[k] is not None}
        return out, names

    # ---------------------------------------------------------------- key=value
    def _kv(self, v: Any, service: Optional[str], key: str, path: str,
            missing: Optional[Callable[[str], str]] = None) -> dict[str, str]:
        """A list of KEY=VALUE (or KEY) or a mapping -> an ordered mapping of text.

        ``missing`` gives the value of a KEY without one (labels: empty; environment:
        the variable of the same name).
        """
        out: dict[str, str] = {}
        if isinstance(v, dict):
            for k, x in v.items():
                if x is None:
                    out[str(k)] = missing(str(k)) if missing else ""
                else:
                    out[str(k)] = self.text(x, service, key, f"{path}.{k}")
        elif isinstance(v, list):
            for i, item in enumerate(v):
                k, eq, x = str(item).partition("=")
                out[k] = (self.text(x, service, key, f"{path}[{i}]") if eq else
                          (missing(k) if missing else ""))
        elif v is not None:
            self.error(service, key, path, "expected a list or a mapping")
        return out

    def _strings(self, v: Any, service: str, key: str, path: str) -> list[str]:
        if v is None:
            return []
        if isinstance(v, (str, int, float)):
            v = [v]
        if not isinstance(v, list):
            self.error(service, key, path, "expected a string or a list of strings")
            return []
        return [self.text(x, service, key, f"{path}[{i}]") for i, x in enumerate(v)]

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
                member_tables[name].values = {k: vals[k] for k in _MEMBER_ORDER if k in vals}
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
            if opts.get("restart") is True:
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

    # ---------------------------------------------------------------- group keys
    def _group_keys(self, services: dict[str, Any], root: str, names: list[str],
                    group: dict[str, Any]) -> None:
        values: dict[str, Any] = {}
        for n in names:
            s = services[n]
            for key in _GROUP_KEYS:
                if key not in s or s[key] is None:
                    continue
                path = f"services.{n}.{key}"
                if n != root and key in _REFUSED_ON_JOINERS:
                    self.error(n, key, path, f"{n!r} joins {root!r}'s network namespace "
                               f"(network_mode), where Docker refuses {key}",
                               f"move it to service {root!r}, which holds the namespace")
                    continue
                converted = self._group_value(n, key, s[key], path, s)
                if converted is None:
                    continue
                if n != root:  # sysctls, shm_size: Compose applied them to the namespace
                    if key == "sysctls":
                        clash = [k for k, x in converted.items()
                                 if k in values.get(key, {}) and values[key][k] != x]
                        if clash:
                            self.error(n, key, path, f"sets {', '.join(clash)} to another "
                                       f"value than {root!r} does, in the namespace they "
                                       "share", "set each sysctl once, on " + repr(root))
                            continue
                        self.note(n, key, path, "moved to the group: they apply to the "
                                  "whole namespace, as they did in Compose")
                        converted = {**values.get(key, {}), **converted}
                    elif key == "shm_size":
                        if key in values and values[key] != converted:
                            self.error(n, key, path, f"differs from {root!r}'s, and the "
                                       "group's members share one /dev/shm",
                                       "set one shm_size, on " + repr(root))
                            continue
                        self.note(n, key, path, "moved to the group: its members share "
                                  "one IPC namespace and /dev/shm")
                values[key] = converted
        if services[root].get("network_mode") == "none":
            values["networks"] = []
        for key in ("ports", "sysctls", "networks", "depends_on", "hostname", "dns",
                    "dns_search", "dns_opt", "extra_hosts", "shm_size"):
            if key in values:
                group[key] = values[key]

    def _group_value(self, n: str, key: str, v: Any, path: str, s: dict[str, Any]) -> Any:
        if key == "ports":
            return self._ports(n, v, path)
        if key == "sysctls":
            out: dict[str, Any] = {}
            if isinstance(v, dict):
                for k, x in v.items():
                    out[str(k)] = x if isinstance(x, int) and not isinstance(x, bool) else \
                        self.text(x, n, key, f"{path}.{k}")
            else:
                out = dict(self._kv(v, n, key, path))
            # "1" from the list form reads better as 1; both mean the same to stackctl
            return {k: int(x) if isinstance(x, str) and re.fullmatch(r"0|[1-9][0-9]{0,17}", x)
                    else x for k, x in out.items()}
        if key == "networks":
            if s.get("network_mode") is not None:
                self.error(n, key, path, "network_mode and networks are both set",
                           "Compose refuses it too: keep one")
                return None
            nets = v if isinstance(v, dict) else {str(x): None for x in (v or [])}
            out_nets = []
            for net, opts in nets.items():
                if net not in self.net_names:
                    self.error(n, key, f"{path}.{net}", f"network {net!r} is not declared",
                               "declare it under the top-level networks, as Compose "
                               "requires")
                    continue
                out_nets.append(self.net_names[net])
                for k in (opts or {}):
                    if not str(k).startswith("x-"):
                        self.note(n, key, f"{path}.{net}.{k}", "not converted: a group is "
                                  "reachable by its own name and MEMBER.GROUP on its networks")
            return out_nets
        if key in ("hostname",):
            return self.text(v, n, key, path)
        if key in ("dns", "dns_search", "dns_opt"):
            return self._strings(v, n, key, path)
        if key == "extra_hosts":
            hosts: list[str] = []
            if isinstance(v, dict):
                for h, ips in v.items():
                    for ip in (ips if isinstance(ips, list) else [ips]):
                        hosts.append(self._host(str(h), self.text(ip, n, key, path)))
            else:
                for i, item in enumerate(self._strings(v, n, key, path)):
                    sep = "=" if "=" in item else ":"
                    h, _, ip = item.partition(sep)
                    hosts.append(self._host(h, ip))
            return hosts
        if key == "shm_size":
            return self.text(v, n, key, path)
        return None

    @staticmethod
    def _host(host: str, ip: str) -> str:
        ip = ip.strip()
        if ":" in ip and not ip.startswith("["):
            ip = f"[{ip}]"
        return f"{host}:{ip}"

    def _ports(self, n: str, v: Any, path: str) -> list[str]:
        out: dict[tuple[str, str, str, str], str] = {}
        if not isinstance(v, list):
            self.error(n, "ports", path, "expected a list of ports")
            return []
        for i, entry in enumerate(v):
            ppath = f"{path}[{i}]"
            if isinstance(entry, dict):
                target = entry.get("target")
                if target is None:
                    self.error(n, "ports", ppath, "the port has no target")
                    continue
                host_ip = str(entry.get("host_ip") or "")
                published = entry.get("published")
                proto = str(entry.get("protocol") or "tcp")
                for k in entry:
                    if k in ("name", "app_protocol", "mode") and not str(k).startswith("x-"):
                        self.note(n, "ports", f"{ppath}.{k}", "not converted: stackctl "
                                  "publishes plain host ports")
                triples = self._port_pairs(n, ppath, host_ip, published, str(target))
            elif isinstance(entry, str) and _has_variable(entry):
                # "${PORT:-8080}:80": read only once stackctl substitutes the variable
                text = self.text(entry, n, "ports", ppath)
                out[("", text, "", "")] = text
                continue
            elif isinstance(entry, (str, int)):
                text = str(entry)
                proto = "tcp"
                if "/" in text:
                    text, proto = text.rsplit("/", 1)
                host_ip, published, target_text = "", None, text
                if text.startswith("["):
                    ip_end = text.find("]")
                    host_ip, rest = text[1:ip_end], text[ip_end + 2:]
                    published, _, target_text = rest.rpartition(":")
                else:
                    parts = text.rsplit(":", 2)
                    if len(parts) == 3:
                        host_ip, published, target_text = parts
                    elif len(parts) == 2:
                        published, target_text = parts
                triples = self._port_pairs(n, ppath, host_ip, published, target_text)
            else:
                self.error(n, "ports", ppath, "expected a port string or mapping")
                continue
            for ip, host, container in triples:
                ip_text = f"[{ip}]:" if ":" in ip else (f"{ip}:" if ip else "")
                text = f"{ip_text}{host}:{container}" + ("" if proto == "tcp" else f"/{proto}")
                key = (ip if ip not in ("0.0.0.0",) else "", host, container, proto)
                out[key] = self.text(text, n, "ports", ppath)
        return list(out.values())

    def _port_pairs(self, n: str, path: str, ip: str, published: Any, target: str
                    ) -> list[tuple[str, str, str]]:
        host = "" if published is None else str(published)
        if _has_variable(host) or _has_variable(target) or _has_variable(ip):
            if not host:
                self.note(n, "ports", path, "not converted: no host port",
                          "stackctl publishes on a host port you choose: write HOST:CONTAINER")
                return []
            return [(ip, host, target)]
        if not host:
            self.note(n, "ports", path, f"not converted: {target} has no host port (Compose "
                      "picks a random one)", "stackctl publishes on a host port you choose: "
                      f"write HOST:{target}")
            return []

        def span(text: str) -> Optional[list[int]]:
            m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", text)
            if not m:
                return None
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            return list(range(lo, hi + 1)) if lo <= hi else None

        hosts, targets = span(host), span(target)
        if hosts is None or targets is None:
            self.error(n, "ports", path, f"cannot read the port {host}:{target}",
                       "write HOST:CONTAINER, a range on both sides, or a long-syntax port")
            return []
        if len(hosts) != len(targets):
            if len(targets) == 1:
                self.note(n, "ports", path, f"not converted: {host}:{target} lets Docker pick "
                          "a host port in a range", "write one host port")
            else:
                self.error(n, "ports", path, f"the ranges {host} and {target} differ in "
                           "length", "Compose refuses it too")
            return []
        return [(ip, str(h), str(t)) for h, t in zip(hosts, targets)]

    # ---------------------------------------------------------------- members
    def _member(self, services: dict[str, Any], name: str, root: str, gname: str) -> Table:
        s = services[name]
        mname = self.names[name]
        m: dict[str, Any] = {}
        base = f"services.{name}"
        for key, v in s.items():
            path = f"{base}.{key}"
            if key.startswith("x-") or key in _GROUP_KEYS or key in (
                    "network_mode", "depends_on"):
                continue
            if key == "build":
                if s.get("image") is not None:
                    self.note(name, key, path, "not converted: " + _NOT_SUPPORTED[key])
                continue
            if key == "extends":
                self.error(name, key, path, "extends is not supported",
                           "convert the output of `docker compose config` instead")
            elif key in _NOT_SUPPORTED:
                if key == "scale" and v == 1:
                    continue
                self.note(name, key, path, "not converted: " + _NOT_SUPPORTED[key])
            elif key == "deploy":
                self._deploy(name, v, path, m)
            elif key in _MEMBER_ORDER:
                converted = self._member_value(name, key, v, path)
                if converted is not None:
                    m[key] = converted
            else:
                self.error(name, key, path, "not a Compose service key",
                           "Compose refuses it too: remove it, or name it x-...")
        if "image" not in m:
            if "build" in s:
                self.error(name, "build", base, f"service {name!r} has build but no image",
                           "stackctl runs images and does not build them: build and tag it "
                           "(docker compose build), then add image: NAME:TAG")
            else:
                self.error(name, "image", base, f"service {name!r} has no image",
                           "add image: NAME:TAG")
        if name in self.extra_tmpfs:
            m["tmpfs"] = list(m.get("tmpfs", [])) + self.extra_tmpfs[name]
        comments = [f'Compose service "{name}"' + (
            f" (network_mode: service:{root})" if name != root else "") + "."]
        ordered = {k: m[k] for k in _MEMBER_ORDER if k in m}
        table = Table(("groups", gname, "members", mname), ordered, comments)
        self.member_tables[name] = table
        return table

    def _deploy(self, name: str, v: Any, path: str, m: dict[str, Any]) -> None:
        if not isinstance(v, dict):
            self.error(name, "deploy", path, "expected a mapping")
            return
        for key, x in v.items():
            kpath = f"{path}.{key}"
            if key.startswith("x-"):
                continue
            if key == "resources" and isinstance(x, dict):
                for rk, rv in x.items():
                    if rk == "limits" and isinstance(rv, dict):
                        for lk, lv in rv.items():
                            lpath = f"{kpath}.limits.{lk}"
                            target = {"memory": "mem_limit", "cpus": "cpus",
                                      "pids": "pids_limit"}.get(lk)
                            if target is None:
                                self.note(name, "deploy", lpath, "not converted: not "
                                          "supported by stackctl")
                                continue
                            conv = self._member_value(name, target, lv, lpath)
                            if target in m and conv is not None and m[target] != conv:
                                self.error(name, "deploy", lpath, f"differs from the "
                                           f"service's {target} ({m[target]!r})",
                                           "Compose refuses it too: keep one")
                            elif conv is not None:
                                m[target] = conv
                    elif not rk.startswith("x-"):
                        self.note(name, "deploy", f"{kpath}.{rk}", "not converted: stackctl "
                                  "sets limits (mem_limit, cpus, pids_limit), not "
                                  "reservations")
            elif key == "restart_policy" and isinstance(x, dict):
                cond = x.get("condition", "any")
                restart = {"none": "no", "on-failure": "on-failure", "any": "always"}.get(
                    str(cond))
                if restart is None:
                    self.error(name, "deploy", f"{kpath}.condition",
                               f"unknown condition {cond!r}", "use none, on-failure or any")
                elif "restart" not in m:
                    m["restart"] = restart
                extra = [k for k in x if k != "condition"]
                if extra:
                    self.note(name, "deploy", kpath, "not converted: " + ", ".join(extra),
                              "Docker's restart policies have no delay or window")
            elif key == "replicas" and x == 1:
                continue
            else:
                self.note(name, "deploy", kpath, "not converted: a Swarm setting; a "
                          "member is one container on this host")

    def _member_value(self, name: str, key: str, v: Any, path: str) -> Any:
        if v is None:
            return None
        if key == "image":
            return self.text(v, name, key, path)
        if key in ("command", "entrypoint"):
            if isinstance(v, str):
                try:
                    return [self.text(x, name, key, path) for x in shlex.split(v)]
                except ValueError as exc:
                    self.error(name, key, path, f"cannot split the command: {exc}",
                               "write it as a list")
                    return None
            return self._strings(v, name, key, path)
        if key == "environment":
            return self._kv(v, name, key, path, missing=lambda k: "${" + k + "}")
        if key == "env_file":
            return self._env_files(name, v, path)
        if key == "volumes":
            return self._mounts(name, v, path)
        if key == "restart":
            text = self.text(v, name, key, path)
            if text.startswith("on-failure:"):
                self.note(name, key, path, f"converted to 'on-failure': {text!r} has a "
                          "retry count, which stackctl does not set")
                return "on-failure"
            return text
        if key in ("init", "read_only"):
            return self.typed(v, bool, name, key, path)
        if key == "pids_limit":
            return self.typed(v, int, name, key, path)
        if key == "cpus":
            return self.typed(v, float, name, key, path)
        if key in ("user", "working_dir", "stop_signal", "mem_limit"):
            return self.text(v, name, key, path)
        if key == "stop_grace_period":
            return self.text(f"{v}s" if isinstance(v, int) else v, name, key, path)
        if key in ("tmpfs", "cap_add", "cap_drop", "security_opt"):
            return self._strings(v, name, key, path)
        if key == "devices":
            out: list[str] = []
            for i, d in enumerate(v if isinstance(v, list) else [v]):
                if isinstance(d, dict):
                    parts = [str(d.get("source", "")), str(d.get("target", d.get("source", "")))]
                    if d.get("permissions"):
                        parts.append(str(d["permissions"]))
                    d = ":".join(parts)
                text = self.text(d, name, key, f"{path}[{i}]")
                if "=" in text.split(":")[0]:
                    self.note(name, key, f"{path}[{i}]", f"not converted: {text!r} is a CDI "
                              "device, which stackctl does not support")
                    continue
                out.append(text)
            return out
        if key == "ulimits":
            if not isinstance(v, dict):
                self.error(name, key, path, "expected a mapping")
                return None
            limits: dict[str, Any] = {}
            for k, x in v.items():
                if isinstance(x, dict):
                    soft = self.typed(x.get("soft"), int, name, key, f"{path}.{k}.soft")
                    hard = self.typed(x.get("hard"), int, name, key, f"{path}.{k}.hard")
                    if soft is not None and hard is not None:
                        limits[str(k)] = {"soft": soft, "hard": hard}
                else:
                    n = self.typed(x, int, name, key, f"{path}.{k}")
                    if n is not None:
                        limits[str(k)] = n
            return limits
        if key == "labels":
            return self._kv(v, name, key, path)
        if key == "healthcheck":
            return self._healthcheck(name, v, path)
        if key == "logging":
            if not isinstance(v, dict):
                self.error(name, key, path, "expected a mapping")
                return None
            log: dict[str, Any] = {}
            if v.get("driver") is not None:
                log["driver"] = self.text(v["driver"], name, key, path + ".driver")
            if v.get("options"):
                log["options"] = self._kv(v["options"], name, key, path + ".options")
            for k in v:
                if k not in ("driver", "options") and not str(k).startswith("x-"):
                    self.error(name, key, f"{path}.{k}", "not a Compose logging key")
            return log
        if key == "pull_policy":
            policy = str(v)
            mapped = {"always": "always", "never": "never", "missing": "missing",
                      "if_not_present": "missing"}.get(policy)
            if mapped is None:
                self.note(name, key, path, f"converted to 'missing': stackctl has no "
                          f"{policy!r} policy", "pull when you choose with `stackctl pull`")
                return "missing"
            return mapped
        return None

    def _healthcheck(self, name: str, v: Any, path: str) -> Optional[dict[str, Any]]:
        if not isinstance(v, dict):
            self.error(name, "healthcheck", path, "expected a mapping")
            return None
        hc: dict[str, Any] = {}
        for k, x in v.items():
            kpath = f"{path}.{k}"
            if str(k).startswith("x-") or x is None:
                continue
            if k == "test":
                hc["test"] = (self.text(x, name, "healthcheck", kpath) if isinstance(x, str)
                              else self._strings(x, name, "healthcheck", kpath))
            elif k in ("interval", "timeout", "start_period", "start_interval"):
                hc[k] = self.text(x, name, "healthcheck", kpath)
            elif k == "retries":
                hc[k] = self.typed(x, int, name, "healthcheck", kpath)
            elif k == "disable":
                hc[k] = self.typed(x, bool, name, "healthcheck", kpath)
            else:
                self.error(name, "healthcheck", kpath, "not a Compose healthcheck key")
        order = ("test", "interval", "timeout", "retries", "start_period", "start_interval",
                 "disable")
        return {k: hc[k] for k in order if k in hc and hc[k] is not None}

    def _env_files(self, name: str, v: Any, path: str) -> list[str]:
        out: list[str] = []
        for i, entry in enumerate(v if isinstance(v, list) else [v]):
            epath = f"{path}[{i}]"
            required = True
            if isinstance(entry, dict):
                required = entry.get("required", True) is not False
                if entry.get("format") not in (None, "", "env"):
                    self.note(name, "env_file", epath + ".format", "not converted: stackctl "
                              "reads KEY=VALUE env files")
                entry = entry.get("path", "")
            text = self.text(entry, name, "env_file", epath)
            if not required:
                where = Path(self.p.project_dir, text)
                if "$" not in text and not where.exists():
                    self.note(name, "env_file", epath, f"not converted: the optional env "
                              f"file {text!r} does not exist",
                              "stackctl requires every env file it is given")
                    continue
            out.append(self.rebase(text))
        return out

    def _mounts(self, name: str, v: Any, path: str) -> list[str]:
        out: list[str] = []
        if not isinstance(v, list):
            self.error(name, "volumes", path, "expected a list")
            return out
        for i, entry in enumerate(v):
            vpath = f"{path}[{i}]"
            if isinstance(entry, dict):
                kind = entry.get("type", "volume")
                source = entry.get("source")
                target = entry.get("target")
                modes: list[str] = []
                if entry.get("read_only"):
                    modes.append("ro")
                if kind == "tmpfs":
                    opts = []
                    tmpfs = entry.get("tmpfs") or {}
                    if tmpfs.get("size") is not None:
                        opts.append(f"size={tmpfs['size']}")
                    if tmpfs.get("mode") is not None:
                        mode = tmpfs["mode"]
                        opts.append(f"mode={mode:o}" if isinstance(mode, int) else f"mode={mode}")
                    self.note(name, "volumes", vpath, "moved to tmpfs", "stackctl lists "
                              "tmpfs mounts under tmpfs")
                    self._pending_tmpfs(name, f"{target}" + (":" + ",".join(opts) if opts
                                                             else ""))
                    continue
                if kind not in ("bind", "volume"):
                    self.note(name, "volumes", vpath, f"not converted: {kind} mounts are "
                              "not supported by stackctl")
                    continue
                bind = entry.get("bind") or {}
                if bind.get("propagation"):
                    modes.append(str(bind["propagation"]))
                if bind.get("selinux"):
                    modes.append(str(bind["selinux"]))
                if (entry.get("volume") or {}).get("nocopy"):
                    modes.append("nocopy")
                if (entry.get("volume") or {}).get("subpath"):
                    self.note(name, "volumes", vpath + ".volume.subpath",
                              "not converted: stackctl mounts whole volumes")
                if entry.get("consistency"):
                    modes.append(str(entry["consistency"]))
                if source is None:
                    self.note(name, "volumes", vpath, "not converted: an anonymous volume",
                              "declare a named volume and mount it")
                    continue
                text = f"{source}:{target}" + (":" + ",".join(modes) if modes else "")
                is_path = kind == "bind"
            else:
                text = str(entry)
                parts = text.split(":")
                if len(parts) == 1:
                    self.note(name, "volumes", vpath, f"not converted: {text!r} is an "
                              "anonymous volume", "declare a named volume and mount it")
                    continue
                source = parts[0]
                is_path = source.startswith((".", "/", "~", "$"))
            text = self.text(text, name, "volumes", vpath)
            src, rest = text.split(":", 1)
            if is_path:
                src = self.rebase(src)
            elif src not in self.vol_names:
                self.error(name, "volumes", vpath, f"volume {src!r} is not declared",
                           "declare it under the top-level volumes, as Compose requires")
                continue
            else:
                src = self.vol_names[src]
            out.append(f"{src}:{rest}")
        return out

    def _pending_tmpfs(self, name: str, spec: str) -> None:
        self.extra_tmpfs.setdefault(name, []).append(spec)


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
