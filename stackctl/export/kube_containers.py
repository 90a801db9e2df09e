"""A stackctl member -> a Kubernetes container, and the pod volumes its mounts need.

Docker's entrypoint and command become ``command`` and ``args`` (escaped against the
kubelet's ``$(VAR)`` expansion), env files Secret references, health checks exec probes,
user and capabilities the container's ``securityContext``; what has no per-container
equivalent (ulimits, devices, logging, ...) becomes a warning with its key path.
"""

from __future__ import annotations

import math
import posixpath
import re
from typing import Any, Optional

from pathlib import Path

import attrs
import networkx as nx

from stackctl.export.kube_context import (Context, SecretToCreate, claim_name, escape,
                                          quantity_bytes, quantity_cpu)
from stackctl.export.names import Namer
from stackctl.spec import envfile
from stackctl.spec.model import Group, Healthcheck, Member
from stackctl.spec.units import UnitError, parse_size

# Docker's healthcheck defaults, written out: Kubernetes' own differ (10 s period, 1 s timeout).
_HEALTH_INTERVAL, _HEALTH_TIMEOUT, _HEALTH_RETRIES, _START_INTERVAL = 30, 30, 3, 5
_PULL_POLICY = {"missing": "IfNotPresent", "always": "Always", "never": "Never"}


@attrs.define
class PodVolumes:
    """The pod's volumes, each once, named uniquely within the pod."""

    volumes: list[dict[str, Any]] = attrs.Factory(list)
    by_key: dict[tuple[str, str], str] = attrs.Factory(dict)
    names: Namer = attrs.Factory(Namer)

    def add(self, key: tuple[str, str], wanted: str, source: dict[str, Any]) -> str:
        if key not in self.by_key:
            name = self.names.name(wanted)
            self.by_key[key] = name
            self.volumes.append({"name": name, **source})
        return self.by_key[key]


def member_mounts(ctx: Context, gname: str, mname: str, member: Member, pod: PodVolumes,
                   claims_used: dict[str, list[str]]) -> list[dict[str, Any]]:
    path = f"groups.{gname}.members.{mname}"
    mounts: list[dict[str, Any]] = []
    for i, spec in enumerate(member.volumes):
        parts = spec.split(":")
        source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
        modes = set(parts[2].split(",")) if len(parts) > 2 else set()
        ignored = sorted(modes - {"ro", "rw"})
        if ignored:
            ctx.warn(f"{path}.volumes[{i}]", f"mode {','.join(ignored)} of {spec!r} has no "
                     "Kubernetes equivalent and is left out (SELinux relabelling and mount "
                     "propagation are set by the cluster)")
        if source.startswith("/"):
            name = pod.add(("host", source), f"host-{source}", {"hostPath": {"path": source}})
            ctx.warn(f"{path}.volumes[{i}]", f"host path {source} becomes a hostPath volume: "
                     "it ties the pod to the files of whichever node runs it; prefer a "
                     "PersistentVolumeClaim, a ConfigMap or files in the image")
        else:
            claim = claim_name(ctx, source)
            claims_used.setdefault(source, [])
            if gname not in claims_used[source]:
                claims_used[source].append(gname)
            name = pod.add(("claim", source), f"data-{source}",
                           {"persistentVolumeClaim": {"claimName": claim}})
        mount: dict[str, Any] = {"name": name, "mountPath": target}
        if "ro" in modes:
            mount["readOnly"] = True
        mounts.append(mount)
    for i, spec in enumerate(member.tmpfs):
        target, _, options = spec.partition(":")
        empty: dict[str, Any] = {"medium": "Memory"}
        for option in filter(None, options.split(",")):
            key, _, value = option.partition("=")
            if key == "size":
                try:
                    empty["sizeLimit"] = quantity_bytes(parse_size(value))
                except UnitError:
                    ctx.warn(f"{path}.tmpfs[{i}]", f"size {value!r} is not a size: no limit set")
            else:
                ctx.warn(f"{path}.tmpfs[{i}]", f"option {option!r} has no emptyDir equivalent "
                         "and is left out (an emptyDir is mode 0777, owned by root)")
        name = pod.add(("tmpfs", f"{mname}:{target}"), f"tmpfs-{mname}-{target}",
                       {"emptyDir": empty})
        mounts.append({"name": name, "mountPath": target})
    return mounts


def _user(ctx: Context, user: str, path: str) -> dict[str, int]:
    uid, _, gid = user.partition(":")
    out: dict[str, int] = {}
    for key, part, what in (("runAsUser", uid, "user"), ("runAsGroup", gid, "group")):
        if part.isdigit():
            out[key] = int(part)
        elif part:
            ctx.warn(path, f"{what} {part!r} is a name: Kubernetes takes numeric ids only "
                     f"({key}); write the id the image gives {part!r}")
    return out


def kubectl_reads_differently(file: str) -> list[int]:
    """The numbers of the lines of env file ``file`` that kubectl's ``--from-env-file``
    (KEY=VALUE split at the first '=', the value verbatim) reads otherwise than stackctl
    (Compose's dotenv subset, :mod:`stackctl.spec.envfile`). No value leaves here.

    The one read of a file in the export: the loader read it already (an unreadable file
    does not load), so a file gone since is simply not checked."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    differing = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        key, _, value = stripped.partition("=")
        try:
            ours = envfile.parse(line)
        except envfile.EnvFileError:
            ours = {}
        if ours != {key: value}:
            differing.append(number)
    return differing


def _capability(name: str) -> str:
    name = name.upper()
    return name[4:] if name.startswith("CAP_") else name


def _security_opts(ctx: Context, opts: tuple[str, ...], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, opt in enumerate(opts):
        m = re.fullmatch(r"([^=:]*)(?:[=:](.*))?", opt)
        key, value = (m.group(1), m.group(2) or "") if m else (opt, "")
        if key == "no-new-privileges" and value in ("", "true"):
            out["allowPrivilegeEscalation"] = False
        elif key == "no-new-privileges" and value == "false":
            continue
        elif key == "apparmor":
            out["appArmorProfile"] = ({"type": "Unconfined"} if value == "unconfined" else
                                      {"type": "Localhost", "localhostProfile": value})
        elif key == "seccomp" and value == "unconfined":
            out["seccompProfile"] = {"type": "Unconfined"}
        elif key == "seccomp":
            ctx.warn(f"{path}[{i}]", "an inline seccomp profile is left out: Kubernetes reads "
                     "profiles from files on each node; put this JSON under the kubelet's "
                     "seccomp directory and set seccompProfile {type: Localhost, "
                     "localhostProfile: FILE}")
        elif key == "label" and value.split(":", 1)[0] in ("user", "role", "type", "level"):
            field, _, setting = value.partition(":")
            out.setdefault("seLinuxOptions", {})[field] = setting
        else:
            ctx.warn(f"{path}[{i}]", f"{opt!r} has no container securityContext equivalent "
                     "here and is left out")
    return out


def _probes(ctx: Context, hc: Optional[Healthcheck], path: str) -> dict[str, Any]:
    if hc is None or hc.disable or (hc.test and hc.test[0] == "NONE"):
        return {}
    if not hc.test:
        ctx.warn(path, "no test: Kubernetes does not read the image's HEALTHCHECK, so no "
                 "probe is made; write the test in the spec")
        return {}
    kind, rest = hc.test[0], list(hc.test[1:])
    if kind == "CMD":
        command = rest
    elif kind == "CMD-SHELL":
        command = ["sh", "-c", " ".join(rest)]
    else:
        command = list(hc.test)
    probe: dict[str, Any] = {
        "exec": {"command": command},
        "periodSeconds": ctx.seconds(hc.interval, _HEALTH_INTERVAL, f"{path}.interval"),
        "timeoutSeconds": ctx.seconds(hc.timeout, _HEALTH_TIMEOUT, f"{path}.timeout"),
        "failureThreshold": hc.retries if hc.retries and hc.retries > 0 else _HEALTH_RETRIES,
    }
    out = {"livenessProbe": probe, "readinessProbe": dict(probe)}
    start = ctx.seconds(hc.start_period, 0, f"{path}.start_period")
    if start:
        period = ctx.seconds(hc.start_interval, _START_INTERVAL, f"{path}.start_interval")
        # Docker checks every start_interval during start_period and does not count
        # failures; the kubelet runs liveness and readiness only after the startup probe
        # passed, and gives up on the container after failureThreshold failures.
        out["startupProbe"] = {
            "exec": {"command": command},
            "periodSeconds": period,
            "timeoutSeconds": probe["timeoutSeconds"],
            "failureThreshold": max(1, math.ceil(start / period)) + probe["failureThreshold"],
        }
    return out


def container(ctx: Context, gname: str, mname: str, name: str, member: Member,
               mounts: list[dict[str, Any]]) -> dict[str, Any]:
    path = f"groups.{gname}.members.{mname}"
    c: dict[str, Any] = {"name": name, "image": member.image,
                         "imagePullPolicy": _PULL_POLICY[member.pull_policy]}
    if member.entrypoint is not None:
        if not member.entrypoint:
            ctx.warn(f"{path}.entrypoint", "an empty entrypoint clears the image's in Docker; "
                     "Kubernetes reads an empty command as the image's own")
        c["command"] = [escape(a) for a in member.entrypoint]
    if member.command is not None:
        c["args"] = [escape(a) for a in member.command]
    if member.working_dir:
        c["workingDir"] = member.working_dir
    if member.environment:
        c["env"] = [{"name": k, "value": escape(v)} for k, v in sorted(member.environment.items())]
    if member.env_file:
        refs = []
        many = len(member.env_file) > 1
        for i, env_file in enumerate(member.env_file):
            wanted = f"{gname}-{mname}-env" + (f"-{i + 1}" if many else "")
            secret = ctx.secret_names.name(wanted)
            shown = env_file if posixpath.isabs(env_file) else posixpath.normpath(
                posixpath.join(ctx.base_dir, env_file))
            ctx.secrets.append(SecretToCreate(secret, shown, f"{path}.env_file"))
            where = f"{path}.env_file" + (f"[{i}]" if many else "")
            differing = kubectl_reads_differently(shown)
            if differing:
                ctx.warn(where, f"{shown}: kubectl create secret --from-env-file takes each "
                         "value literally (quotes, 'export ' and ' #' comments stay in it), "
                         "stackctl does not: line(s) " + ", ".join(map(str, differing)) +
                         " would give the Secret other values; write them as plain KEY=VALUE")
            refs.append({"secretRef": {"name": secret}})
        c["envFrom"] = refs
    resources: dict[str, str] = {}
    if member.cpus is not None and member.cpus > 0:
        resources["cpu"] = quantity_cpu(member.cpus)
    if member.mem_limit is not None:
        try:
            memory = parse_size(member.mem_limit)
            if memory:  # Docker reads 0 as no limit
                resources["memory"] = quantity_bytes(memory)
        except UnitError:
            ctx.warn(f"{path}.mem_limit", f"{member.mem_limit!r} is not a size: no limit set")
    if resources:
        c["resources"] = {"limits": resources}
    c.update(_probes(ctx, member.healthcheck, f"{path}.healthcheck"))
    security: dict[str, Any] = {}
    if member.user:
        security.update(_user(ctx, member.user, f"{path}.user"))
    caps: dict[str, list[str]] = {}
    if member.cap_add:
        caps["add"] = [_capability(n) for n in member.cap_add]
    if member.cap_drop:
        caps["drop"] = [_capability(n) for n in member.cap_drop]
    if caps:
        security["capabilities"] = caps
    if member.read_only:
        security["readOnlyRootFilesystem"] = True
    security.update(_security_opts(ctx, member.security_opt, f"{path}.security_opt"))
    if security:
        c["securityContext"] = security
    if mounts:
        c["volumeMounts"] = mounts
    _member_warnings(ctx, member, path)
    return c


def _member_warnings(ctx: Context, member: Member, path: str) -> None:
    if member.restart in ("no", "on-failure"):
        ctx.warn(f"{path}.restart", f"{member.restart!r}: a Deployment's pod always restarts "
                 "its containers (restartPolicy Always); run one-off work as a Job")
    if member.init:
        ctx.warn(f"{path}.init", "Kubernetes has no docker-init: put an init (tini, "
                 "dumb-init) in the image, or set shareProcessNamespace so the pause "
                 "process reaps zombies")
    if member.pids_limit is not None:
        ctx.warn(f"{path}.pids_limit", "no per-container limit: the kubelet's podPidsLimit "
                 "sets one for every pod of a node")
    if member.ulimits:
        ctx.warn(f"{path}.ulimits", "no Kubernetes equivalent: pods get the container "
                 "runtime's default ulimits; raise them in the runtime's configuration")
    if member.devices:
        ctx.warn(f"{path}.devices", "no Kubernetes equivalent: expose host devices with a "
                 "device plugin and request them as resources")
    if member.logging is not None:
        ctx.warn(f"{path}.logging", "no Kubernetes equivalent: the kubelet keeps container "
                 "logs; ship them with the cluster's log collector")
    if member.stop_signal:
        ctx.warn(f"{path}.stop_signal", "not carried over: Kubernetes stops containers with "
                 "the image's STOPSIGNAL (else SIGTERM); set it in the image")


def member_order(group: Group) -> tuple[list[str], list[str]]:
    """(sidecars, containers): members others depend on start first, as sidecars.

    A sidecar (an init container with restartPolicy Always) is started, in order, before
    the app containers, and the kubelet waits for its startup probe: the start order a
    member's depends_on asks for within the pod.
    """
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(group.members)
    for name, member in group.members.items():
        for dep in member.depends_on:
            if dep in group.members:
                graph.add_edge(dep, name)
    order = list(nx.lexicographical_topological_sort(graph))
    needed = {dep for _, m in group.members.items() for dep in m.depends_on}
    return [n for n in order if n in needed], [n for n in order if n not in needed]
