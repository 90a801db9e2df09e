"""A validated Stack -> Kubernetes objects: a pure transform, no engine, no file access.

A namespace group is what Kubernetes calls a pod: a pause container holding the network
and IPC namespaces, app containers sharing them, namespaced sysctls in the pod's
``securityContext``. So each group becomes a Deployment of one pod (one replica,
``Recreate``: the group is one instance, and its volumes are single-writer), each group
with ports a Service named after it (``api:8080`` resolves in the cluster as on the Docker
host), each named volume a PersistentVolumeClaim, each ``internal`` network a
NetworkPolicy. Whatever has no Kubernetes equivalent is reported as a warning with its key
path, never dropped silently; env-file values never enter the manifests (they go to Git):
the pods reference Secrets, and the export says how to create them.

docs/migrating.md ("From stackctl to Kubernetes") is the key-by-key reference of this
mapping; keep the two in step.
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
import shlex
from typing import Any, Optional

import attrs
import networkx as nx

from stackctl.export import kube_sysctls
from stackctl.errors import ExportError
from stackctl.export.names import DNS_LABEL_RE, Namer, is_qualified_name, label_value
from stackctl.spec.model import Group, Healthcheck, Member, Stack
from stackctl.spec.sysctls import normalize_value
from stackctl.spec.units import UnitError, parse_duration, parse_size

PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"

_SECOND = 10 ** 9
# Docker's healthcheck defaults, written out: Kubernetes' own differ (10 s period, 1 s timeout).
_HEALTH_INTERVAL, _HEALTH_TIMEOUT, _HEALTH_RETRIES, _START_INTERVAL = 30, 30, 3, 5
_PULL_POLICY = {"missing": "IfNotPresent", "always": "Always", "never": "Never"}


@attrs.frozen
class ExportWarning:
    """Something of the spec that does not carry over as it is: where, and what happens."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@attrs.frozen
class SecretToCreate:
    """A Secret the pods reference, made from one of the spec's env files."""

    name: str
    env_file: str  # as the operator reaches it from where they ran stackctl
    path: str  # the spec key it comes from

    def command(self, namespace: Optional[str]) -> str:
        ns = f" --namespace {shlex.quote(namespace)}" if namespace else ""
        return (f"kubectl create secret generic {self.name}{ns} "
                f"--from-env-file={shlex.quote(self.env_file)}")


@attrs.frozen
class Document:
    """One Kubernetes object and the comment lines written above it."""

    obj: dict[str, Any]
    comments: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@attrs.frozen
class KubernetesExport:
    """The manifests of a stack, and what the operator must know before applying them."""

    stack: str
    namespace: Optional[str]
    documents: tuple[Document, ...]
    warnings: tuple[ExportWarning, ...]
    secrets: tuple[SecretToCreate, ...]
    sysctls: tuple[str, ...]  # every sysctl name a pod sets
    unsafe_sysctls: tuple[str, ...]  # those the kubelet refuses unless its flag allows them
    sysctl_caveats: tuple[str, ...]

    @property
    def kubelet_flag(self) -> Optional[str]:
        return kube_sysctls.kubelet_flag(self.unsafe_sysctls)

    def secret_commands(self) -> list[str]:
        return [s.command(self.namespace) for s in self.secrets]


# ------------------------------------------------------------------------------ helpers
def _escape(text: str) -> str:
    """Keep Kubernetes from expanding ``$(VAR)`` in command, args and env values.

    The kubelet reads ``$(NAME)`` as a reference and ``$$`` as an escaped ``$``; Docker
    reads neither. Doubling each ``$`` followed by ``$`` or ``(`` makes the kubelet pass
    the text through exactly as Docker does, and leaves every other ``$`` (``$HOME`` for
    a shell) as written.
    """
    return re.sub(r"\$(?=[$(])", "$$", text)


def _quantity_bytes(n: int) -> str:
    for unit, size in (("Gi", 1024 ** 3), ("Mi", 1024 ** 2), ("Ki", 1024)):
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _quantity_cpu(cpus: float) -> str:
    milli = max(1, round(cpus * 1000))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


@attrs.define
class _Context:
    stack: Stack
    namespace: Optional[str]
    base_dir: str
    warnings: list[ExportWarning] = attrs.Factory(list)
    secrets: list[SecretToCreate] = attrs.Factory(list)
    group_names: Namer = attrs.Factory(lambda: Namer(letter_first=True))
    claim_names: Namer = attrs.Factory(Namer)
    secret_names: Namer = attrs.Factory(lambda: Namer(limit=253))
    policy_names: Namer = attrs.Factory(Namer)

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(ExportWarning(path, message))

    def labels(self, name: str, component: str) -> dict[str, str]:
        """The labels of every object; ``name`` is the object's Kubernetes name (groups'
        are unique, so a pod selector by name never picks another group's pods)."""
        return {
            PART_OF: label_value(self.stack.name),
            NAME: label_value(name),
            COMPONENT: component,
            MANAGED_BY: "stackctl",
        }

    def metadata(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if self.namespace:
            meta["namespace"] = self.namespace
        meta["labels"] = labels
        return meta

    def selector(self, group: str) -> dict[str, str]:
        return {PART_OF: label_value(self.stack.name), NAME: self.group_names.name(group)}

    def seconds(self, text: Optional[str], default: int, path: str) -> int:
        """A Docker duration as the whole seconds a probe takes (at least 1)."""
        if text is None:
            return default
        try:
            ns = parse_duration(text)
        except UnitError:
            self.warn(path, f"{text!r} is not a duration: Docker's default {default}s is used")
            return default
        if ns == 0:
            return default
        if ns % _SECOND:
            self.warn(path, f"{text!r} rounded up to {math.ceil(ns / _SECOND)}s: Kubernetes "
                            "probe timings are whole seconds")
        return max(1, math.ceil(ns / _SECOND))


# ---------------------------------------------------------------------------- volumes
@attrs.define
class _PodVolumes:
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


def _claim_name(ctx: _Context, volume: str) -> str:
    declared = ctx.stack.volumes.get(volume)
    if declared is not None and declared.external:
        return ctx.claim_names.name(declared.name or volume)
    return ctx.claim_names.name(volume)


def _member_mounts(ctx: _Context, gname: str, mname: str, member: Member, pod: _PodVolumes,
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
            claim = _claim_name(ctx, source)
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
                    empty["sizeLimit"] = _quantity_bytes(parse_size(value))
                except UnitError:
                    ctx.warn(f"{path}.tmpfs[{i}]", f"size {value!r} is not a size: no limit set")
            else:
                ctx.warn(f"{path}.tmpfs[{i}]", f"option {option!r} has no emptyDir equivalent "
                         "and is left out (an emptyDir is mode 0777, owned by root)")
        name = pod.add(("tmpfs", f"{mname}:{target}"), f"tmpfs-{mname}-{target}",
                       {"emptyDir": empty})
        mounts.append({"name": name, "mountPath": target})
    return mounts


def _claims(ctx: _Context, claims_used: dict[str, list[str]]) -> list[Document]:
    docs = []
    names = list(dict.fromkeys([*ctx.stack.volumes, *claims_used]))
    for vname in names:
        declared = ctx.stack.volumes.get(vname)
        path = f"volumes.{vname}"
        groups = claims_used.get(vname, [])
        if len(groups) > 1:
            ctx.warn(path, f"mounted by the pods of groups {', '.join(groups)}: a "
                     "ReadWriteOnce claim serves one node only; use a storage class that "
                     "offers ReadWriteMany, or keep these groups on one node")
        if declared is not None and declared.external:
            ctx.warn(path, f"external: the claim {_claim_name(ctx, vname)!r} must exist "
                     "already in the namespace; it is referenced, not created")
            continue
        claim = _claim_name(ctx, vname)
        if claim != vname:
            ctx.warn(path, f"its claim is named {claim!r} (object names are DNS-1123)")
        comments = []
        if declared is None:
            comments.append(f"volume {vname!r} is used by a member but not declared in "
                            "[volumes]")
        if declared is not None and (declared.driver != "local" or declared.driver_opts):
            ctx.warn(path, f"driver {declared.driver!r} and its options do not carry over: "
                     "choose the storage with the claim's storageClassName")
        comments.append("Docker volumes have no size: 1Gi is a placeholder, set the size "
                        "this data needs (and a storageClassName if the default is wrong)")
        obj: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": ctx.metadata(_claim_name(ctx, vname), ctx.labels(_claim_name(ctx, vname), "volume")),
        }
        annotations = _annotations(ctx, declared.labels if declared else {}, f"{path}.labels")
        if annotations:
            obj["metadata"]["annotations"] = annotations
        obj["spec"] = {"accessModes": ["ReadWriteOnce"],
                       "resources": {"requests": {"storage": "1Gi"}}}
        docs.append(Document(obj, tuple(comments)))
    return docs


def _annotations(ctx: _Context, labels: dict[str, str], path: str) -> dict[str, str]:
    out = {}
    for key, value in sorted(labels.items()):
        if is_qualified_name(key):
            out[key] = value
        else:
            ctx.warn(f"{path}.{key}", "not a valid Kubernetes annotation key: left out")
    return out


# ---------------------------------------------------------------------------- members
def _user(ctx: _Context, user: str, path: str) -> dict[str, int]:
    uid, _, gid = user.partition(":")
    out: dict[str, int] = {}
    for key, part, what in (("runAsUser", uid, "user"), ("runAsGroup", gid, "group")):
        if part.isdigit():
            out[key] = int(part)
        elif part:
            ctx.warn(path, f"{what} {part!r} is a name: Kubernetes takes numeric ids only "
                     f"({key}); write the id the image gives {part!r}")
    return out


def _capability(name: str) -> str:
    name = name.upper()
    return name[4:] if name.startswith("CAP_") else name


def _security_opts(ctx: _Context, opts: tuple[str, ...], path: str) -> dict[str, Any]:
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
        elif key == "label" and value.split(":", 1)[0] in ("user", "role", "type", "level"):
            field, _, setting = value.partition(":")
            out.setdefault("seLinuxOptions", {})[field] = setting
        else:
            ctx.warn(f"{path}[{i}]", f"{opt!r} has no container securityContext equivalent "
                     "here and is left out")
    return out


def _probes(ctx: _Context, hc: Optional[Healthcheck], path: str) -> dict[str, Any]:
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


def _container(ctx: _Context, gname: str, mname: str, name: str, member: Member,
               mounts: list[dict[str, Any]]) -> dict[str, Any]:
    path = f"groups.{gname}.members.{mname}"
    c: dict[str, Any] = {"name": name, "image": member.image,
                         "imagePullPolicy": _PULL_POLICY[member.pull_policy]}
    if member.entrypoint is not None:
        if not member.entrypoint:
            ctx.warn(f"{path}.entrypoint", "an empty entrypoint clears the image's in Docker; "
                     "Kubernetes reads an empty command as the image's own")
        c["command"] = [_escape(a) for a in member.entrypoint]
    if member.command is not None:
        c["args"] = [_escape(a) for a in member.command]
    if member.working_dir:
        c["workingDir"] = member.working_dir
    if member.environment:
        c["env"] = [{"name": k, "value": _escape(v)} for k, v in sorted(member.environment.items())]
    if member.env_file:
        refs = []
        many = len(member.env_file) > 1
        for i, env_file in enumerate(member.env_file):
            wanted = f"{gname}-{mname}-env" + (f"-{i + 1}" if many else "")
            secret = ctx.secret_names.name(wanted)
            shown = env_file if posixpath.isabs(env_file) else posixpath.normpath(
                posixpath.join(ctx.base_dir, env_file))
            ctx.secrets.append(SecretToCreate(secret, shown, f"{path}.env_file"))
            refs.append({"secretRef": {"name": secret}})
        c["envFrom"] = refs
    resources: dict[str, str] = {}
    if member.cpus is not None and member.cpus > 0:
        resources["cpu"] = _quantity_cpu(member.cpus)
    if member.mem_limit is not None:
        try:
            memory = parse_size(member.mem_limit)
            if memory:  # Docker reads 0 as no limit
                resources["memory"] = _quantity_bytes(memory)
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


def _member_warnings(ctx: _Context, member: Member, path: str) -> None:
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


def _member_order(group: Group) -> tuple[list[str], list[str]]:
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


# ----------------------------------------------------------------------------- groups
def _extra_hosts(ctx: _Context, entries: tuple[str, ...], path: str) -> list[dict[str, Any]]:
    by_ip: dict[str, list[str]] = {}
    for i, entry in enumerate(entries):
        host, sep, ip = entry.partition("=") if "=" in entry else entry.partition(":")
        ip = ip.strip("[]")
        if not sep or not host or not ip:
            ctx.warn(f"{path}[{i}]", f"cannot read {entry!r}: left out")
            continue
        if ip == "host-gateway":
            ctx.warn(f"{path}[{i}]", f"{host} -> host-gateway: a pod has no Docker host; "
                     "point it at a Service or the node's address")
            continue
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            ctx.warn(f"{path}[{i}]", f"{ip!r} is not an IP address: left out")
            continue
        by_ip.setdefault(ip, []).append(host)
    return [{"ip": ip, "hostnames": hosts} for ip, hosts in sorted(by_ip.items())]


def _dns_config(ctx: _Context, group: Group, path: str) -> Optional[dict[str, Any]]:
    config: dict[str, Any] = {}
    if group.dns:
        config["nameservers"] = list(group.dns[:3])
        if len(group.dns) > 3:
            ctx.warn(f"{path}.dns", f"a pod takes at most 3 nameservers: {', '.join(group.dns[3:])} "
                     "left out")
        ctx.warn(f"{path}.dns", "added after the cluster's DNS (dnsPolicy ClusterFirst), so "
                 "Service names still resolve; Docker replaces the resolvers instead")
    if group.dns_search:
        config["searches"] = list(group.dns_search)
    if group.dns_opt:
        options = []
        for opt in group.dns_opt:
            key, sep, value = opt.partition(":")
            options.append({"name": key, "value": value} if sep else {"name": key})
        config["options"] = options
    return config or None


def _hostname(ctx: _Context, hostname: str, path: str) -> str:
    first = hostname.split(".", 1)[0]
    name = Namer().name(first)
    if name != hostname:
        ctx.warn(path, f"{hostname!r} becomes {name!r}: a pod's hostname is one DNS label "
                 "(a fully qualified name needs spec.subdomain and a headless Service)")
    return name


def _group(ctx: _Context, gname: str, group: Group,
           claims_used: dict[str, list[str]]) -> list[Document]:
    path = f"groups.{gname}"
    name = ctx.group_names.name(gname)
    labels = ctx.labels(name, "group")
    pod_volumes = _PodVolumes()
    containers_namer = Namer()
    containers_namer.prepare(list(group.members))
    for mname, new in containers_namer.renamed.items():
        ctx.warn(f"{path}.members.{mname}", f"container named {new!r} (container names are "
                 "DNS-1123 labels)")
    sidecar_names, app_names = _member_order(group)
    built: dict[str, dict[str, Any]] = {}
    for mname in [*sidecar_names, *app_names]:
        member = group.members[mname]
        mounts = _member_mounts(ctx, gname, mname, member, pod_volumes, claims_used)
        built[mname] = _container(ctx, gname, mname, containers_namer.name(mname), member, mounts)
    if group.shm_size is not None:
        try:
            size = _quantity_bytes(parse_size(group.shm_size))
            shm = pod_volumes.add(("shm", ""), "dshm",
                                  {"emptyDir": {"medium": "Memory", "sizeLimit": size}})
            for c in built.values():
                mounts = c.setdefault("volumeMounts", [])
                if all(m["mountPath"].rstrip("/") != "/dev/shm" for m in mounts):
                    mounts.append({"name": shm, "mountPath": "/dev/shm"})
        except UnitError:
            ctx.warn(f"{path}.shm_size", f"{group.shm_size!r} is not a size: left out")
    sidecars = [{**built[n], "restartPolicy": "Always"} for n in sidecar_names]

    pod: dict[str, Any] = {
        # Docker passes no Service variables nor API credentials to a container.
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
    }
    if group.hostname:
        pod["hostname"] = _hostname(ctx, group.hostname, f"{path}.hostname")
    dns = _dns_config(ctx, group, path)
    if dns:
        pod["dnsConfig"] = dns
    aliases = _extra_hosts(ctx, group.extra_hosts, f"{path}.extra_hosts")
    if aliases:
        pod["hostAliases"] = aliases
    if group.sysctls:
        pod["securityContext"] = {"sysctls": [
            {"name": k, "value": normalize_value(v)} for k, v in sorted(group.sysctls.items())]}
    grace = [ctx.seconds(m.stop_grace_period, 10, f"{path}.members.{n}.stop_grace_period")
             for n, m in group.members.items() if m.stop_grace_period]
    if grace:
        pod["terminationGracePeriodSeconds"] = max(grace)
        if len(set(grace)) > 1:
            ctx.warn(f"{path}.members", "stop_grace_period differs between members: the pod "
                     f"has one, the longest ({max(grace)}s)")
    if sidecars:
        pod["initContainers"] = sidecars
    pod["containers"] = [built[n] for n in app_names]
    if pod_volumes.volumes:
        pod["volumes"] = pod_volumes.volumes

    annotations: dict[str, str] = {}
    for mname, member in group.members.items():
        for key, value in _annotations(ctx, member.labels,
                                       f"{path}.members.{mname}.labels").items():
            if annotations.get(key, value) != value:
                ctx.warn(f"{path}.members.{mname}.labels.{key}", "members disagree on this "
                         "label; the pod has one set of annotations: the first member's is kept")
                continue
            annotations[key] = value
    template_meta: dict[str, Any] = {"labels": labels}
    if annotations:
        template_meta["annotations"] = annotations

    comments = [f"group {gname!r}: one pod; its members share its network and IPC namespaces"]
    if group.depends_on:
        comments.append(f"depends_on = {list(group.depends_on)}: Kubernetes has no start order "
                        "between Deployments. This pod starts at once; its apps must retry "
                        "until " + ", ".join(group.depends_on) + " answer (or wait in an init "
                        "container).")
    if sidecar_names:
        comments.append("members others depend on (" + ", ".join(sidecar_names) + ") are "
                        "sidecars (initContainers, restartPolicy Always): they start first, "
                        "in depends_on order")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": ctx.metadata(name, labels),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": ctx.selector(gname)},
            "template": {"metadata": template_meta, "spec": pod},
        },
    }
    docs = [Document(deployment, tuple(comments))]
    if not group.members:
        ctx.warn(path, "no members: the Deployment's pod needs a container; the group's "
                 "owner image runs as one")
        pod["containers"] = [{"name": "owner", "image": ctx.stack.owner_image(group)}]
        if ctx.stack.owner_command(group):
            pod["containers"][0]["args"] = [_escape(a) for a in ctx.stack.owner_command(group)]
    if group.ports:
        docs.append(_service(ctx, gname, group, name, labels))
    return docs


def _service(ctx: _Context, gname: str, group: Group, name: str,
             labels: dict[str, str]) -> Document:
    seen: dict[tuple[int, str], dict[str, Any]] = {}
    for p in group.ports:
        key = (p.container_port, p.protocol)
        if key not in seen:
            seen[key] = {"name": f"{p.protocol}-{p.container_port}", "port": p.container_port,
                         "targetPort": p.container_port, "protocol": p.protocol.upper()}
    published = ", ".join(str(p) for p in group.ports)
    ctx.warn(f"groups.{gname}.ports", f"host ports do not carry over ({published}): the "
             f"Service {name!r} answers on the container ports inside the cluster; publish "
             "outside it with an Ingress, or a LoadBalancer or NodePort Service")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.metadata(name, labels),
        "spec": {"selector": ctx.selector(gname), "ports": list(seen.values())},
    }
    return Document(service, (f"group {gname!r} answers as {name!r} in the namespace, on its "
                              "container ports",))


# --------------------------------------------------------------------------- networks
def _policies(ctx: _Context) -> list[Document]:
    stack = ctx.stack
    internal = {n for n, net in stack.networks.items() if net.internal}
    docs: list[Document] = []
    for nname, net in stack.networks.items():
        path = f"networks.{nname}"
        if net.external:
            ctx.warn(path, "external network: no Kubernetes equivalent (pods share the "
                     "cluster's network); reach what is on it through a Service")
            continue
        if net.subnet:
            ctx.warn(f"{path}.subnet", "pod addresses come from the cluster's pod CIDR")
        if not net.internal:
            continue
        on = [g for g, grp in stack.groups.items() if nname in grp.networks]
        # Groups reachable only through internal networks are isolated in Docker; those
        # also on a network with a route out are not, and stay unrestricted here too.
        isolated = [g for g in on if set(stack.groups[g].networks) <= internal]
        if not isolated:
            ctx.warn(path, "internal, but every group on it is also on a network with a "
                     "route out: no NetworkPolicy is needed")
            continue
        peers = {"podSelector": {"matchLabels": {PART_OF: label_value(stack.name)},
                                 "matchExpressions": [{"key": NAME, "operator": "In",
                                                       "values": [ctx.group_names.name(g) for g in on]}]}}
        name = ctx.policy_names.name(f"{nname}-internal")
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": ctx.metadata(name, ctx.labels(nname, "network")),
            "spec": {
                "podSelector": {"matchLabels": {PART_OF: label_value(stack.name)},
                                "matchExpressions": [{"key": NAME, "operator": "In",
                                                      "values": [ctx.group_names.name(g) for g in isolated]}]},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [peers]}],
                "egress": [{"to": [peers]}, _DNS_EGRESS],
            },
        }
        docs.append(Document(policy, (
            f"internal network {nname!r}: groups {', '.join(isolated)} reach and are reached by "
            f"the groups on it only ({', '.join(on)}), and the cluster DNS",)))
    for gname, group in stack.groups.items():
        if not group.networks:
            name = ctx.policy_names.name(f"{gname}-isolated")
            docs.append(Document({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": ctx.metadata(name, ctx.labels(ctx.group_names.name(gname), "group")),
                "spec": {"podSelector": {"matchLabels": ctx.selector(gname)},
                         "policyTypes": ["Ingress", "Egress"]},
            }, (f"group {gname!r} has networks = []: loopback only, no traffic in or out",)))
    custom = [n for n, net in stack.networks.items() if not net.internal and not net.external]
    apart = [g for g, grp in stack.groups.items() if grp.networks and "default" not in grp.networks]
    if custom and apart:
        ctx.warn("networks", "Kubernetes' pod network is flat: groups that separate Docker "
                 f"networks keep apart (here the groups not on \"default\": {', '.join(apart)}) "
                 "reach each other there; only internal networks become NetworkPolicies")
    return docs


# Pods behind an internal network's policy still resolve names through the cluster DNS, as
# members reach Docker's embedded DNS server on an internal network.
_DNS_EGRESS: dict[str, Any] = {
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


# ------------------------------------------------------------------------------ entry
def export_kubernetes(stack: Stack, namespace: Optional[str] = None,
                      base_dir: str = ".") -> KubernetesExport:
    """The stack as Kubernetes objects, with the warnings, Secrets and kubelet flag it needs.

    ``base_dir`` is the directory of the spec files as the operator named it: env-file
    paths are shown relative to it in the ``kubectl create secret`` lines. Nothing is read
    from it.
    """
    if namespace is not None and not (len(namespace) <= 63 and DNS_LABEL_RE.fullmatch(namespace)):
        raise ExportError(f"--namespace {namespace!r} is not a valid namespace name (at most "
                          "63 of a-z, 0-9 and '-', starting and ending with a letter or digit)")
    ctx = _Context(stack=stack, namespace=namespace, base_dir=base_dir)
    ctx.group_names.prepare(list(stack.groups))
    for gname, new in ctx.group_names.renamed.items():
        ctx.warn(f"groups.{gname}", f"named {new!r} in Kubernetes (object names are DNS "
                 f"labels): other groups reach it as {new!r}, not {gname!r}")
    claims_used: dict[str, list[str]] = {}
    group_docs: list[Document] = []
    for gname, group in stack.groups.items():
        group_docs += _group(ctx, gname, group, claims_used)
    claim_docs = _claims(ctx, claims_used)
    policy_docs = _policies(ctx)
    sysctls = sorted({k for g in stack.groups.values() for k in g.sysctls})
    return KubernetesExport(
        stack=stack.name,
        namespace=namespace,
        documents=tuple(claim_docs + group_docs + policy_docs),
        warnings=tuple(ctx.warnings),
        secrets=tuple(ctx.secrets),
        sysctls=tuple(sysctls),
        unsafe_sysctls=tuple(kube_sysctls.unsafe(sysctls)),
        sysctl_caveats=tuple(kube_sysctls.caveats(sysctls)),
    )
