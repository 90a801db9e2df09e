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

The containers are mapped in :mod:`stackctl.export.kube_containers`. docs/migrating.md
("From stackctl to Kubernetes") is the key-by-key reference of this
mapping; keep the two in step.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Optional

import attrs

from stackctl.errors import ExportError
from stackctl.export import kube_sysctls
from stackctl.export.kube_containers import PodVolumes, container, member_mounts, member_order
from stackctl.export.kube_context import (PART_OF, NAME, Context, ExportWarning, SecretToCreate,
                                          annotations_of, claim_name, escape, quantity_bytes)
from stackctl.export.names import DNS_LABEL_RE, Namer, label_value
from stackctl.spec.model import Group, Stack
from stackctl.spec.sysctls import normalize_value
from stackctl.spec.units import UnitError, parse_size


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


def _claims(ctx: Context, claims_used: dict[str, list[str]]) -> list[Document]:
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
            ctx.warn(path, f"external: the claim {claim_name(ctx, vname)!r} must exist "
                     "already in the namespace; it is referenced, not created")
            continue
        claim = claim_name(ctx, vname)
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
            "metadata": ctx.metadata(claim_name(ctx, vname), ctx.labels(claim_name(ctx, vname), "volume")),
        }
        notes = annotations_of(ctx, declared.labels if declared else {}, f"{path}.labels")
        if notes:
            obj["metadata"]["annotations"] = notes
        obj["spec"] = {"accessModes": ["ReadWriteOnce"],
                       "resources": {"requests": {"storage": "1Gi"}}}
        docs.append(Document(obj, tuple(comments)))
    return docs


# ----------------------------------------------------------------------------- groups
def _extra_hosts(ctx: Context, entries: tuple[str, ...], path: str) -> list[dict[str, Any]]:
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


def _dns_config(ctx: Context, group: Group, path: str) -> Optional[dict[str, Any]]:
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


def _hostname(ctx: Context, hostname: str, path: str) -> str:
    first = hostname.split(".", 1)[0]
    name = Namer().name(first)
    if name != hostname:
        ctx.warn(path, f"{hostname!r} becomes {name!r}: a pod's hostname is one DNS label "
                 "(a fully qualified name needs spec.subdomain and a headless Service)")
    return name


def _group(ctx: Context, gname: str, group: Group,
           claims_used: dict[str, list[str]]) -> list[Document]:
    path = f"groups.{gname}"
    name = ctx.group_names.name(gname)
    labels = ctx.labels(name, "group")
    pod_volumes = PodVolumes()
    containers_namer = Namer()
    containers_namer.prepare(list(group.members))
    for mname, new in containers_namer.renamed.items():
        ctx.warn(f"{path}.members.{mname}", f"container named {new!r} (container names are "
                 "DNS-1123 labels)")
    sidecar_names, app_names = member_order(group)
    built: dict[str, dict[str, Any]] = {}
    for mname in [*sidecar_names, *app_names]:
        member = group.members[mname]
        mounts = member_mounts(ctx, gname, mname, member, pod_volumes, claims_used)
        built[mname] = container(ctx, gname, mname, containers_namer.name(mname), member, mounts)
    if group.shm_size is not None:
        try:
            size = quantity_bytes(parse_size(group.shm_size))
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

    pod_notes: dict[str, str] = {}
    for mname, member in group.members.items():
        for key, value in annotations_of(ctx, member.labels,
                                      f"{path}.members.{mname}.labels").items():
            if pod_notes.get(key, value) != value:
                ctx.warn(f"{path}.members.{mname}.labels.{key}", "members disagree on this "
                         "label; the pod has one set of annotations: the first member's is kept")
                continue
            pod_notes[key] = value
    template_meta: dict[str, Any] = {"labels": labels}
    if pod_notes:
        template_meta["annotations"] = pod_notes

    comments = [f"group {gname!r}: one pod; its members share its network and IPC namespaces"]
    if group.depends_on:
        comments.append(f"depends_on = {list(group.depends_on)}: Kubernetes has no start order "
                        "between Deployments. This pod starts at once; its apps must retry "
                        "until " + ", ".join(group.depends_on) + " can be reached (or wait in "
                        "an init container).")
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
            pod["containers"][0]["args"] = [escape(a) for a in ctx.stack.owner_command(group)]
    if group.ports:
        docs.append(_service(ctx, gname, group, name, labels))
    return docs


def _service(ctx: Context, gname: str, group: Group, name: str,
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
def _policies(ctx: Context) -> list[Document]:
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
    ctx = Context(stack=stack, namespace=namespace, base_dir=base_dir)
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
