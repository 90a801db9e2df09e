"""Checks of exported Kubernetes manifests, independent of the exporter's own code.

``validate`` checks one object against the official OpenAPI-derived JSON Schemas that the
``kubernetes-validate`` package ships (offline), in strict mode: an unknown field fails.
The schemas do not check what the API server checks besides (name syntax, references
inside a pod, selectors matching their template), so ``check_semantics`` does that much.
Quantities are read back here with their own small parser, not the exporter's.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Optional

import jsonschema
import pytest
import yaml
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from stackctl.export.names import Namer
from stackctl.spec.model import Healthcheck, Stack
from stackctl.spec.sysctls import normalize_value
from stackctl.spec.units import parse_duration, parse_size

KUBERNETES = "1.37.0"  # the newest release kubernetes-validate 1.37 ships schemas for

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
IANA_SVC_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def read_yaml(text: str) -> list[dict[str, Any]]:
    """The documents of a YAML stream, read with libyaml where present (another YAML
    implementation than the pure-Python emitter that wrote them, and 10 times faster)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(text, Loader=loader) if d is not None]


def validate_official(obj: dict[str, Any]) -> None:
    """kubernetes-validate's own entry point, strict; raises on any schema error."""
    kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@functools.lru_cache(maxsize=None)
def _validator(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """The same validator kubernetes_validate.validate builds, built once per kind (the
    definitions file is large; the property test validates thousands of objects)."""
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{KUBERNETES}-local-strict"
    schema = kv_utils.schema_contents(f"{folder}/{kind.lower()}-{api}.json", KUBERNETES)
    definitions = kv_utils.schema_contents(f"{folder}/_definitions.json", KUBERNETES)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate(obj: dict[str, Any]) -> None:
    _validator(obj["kind"], obj["apiVersion"]).validate(obj)


def _dns(name: str, pattern: re.Pattern[str] = DNS_LABEL, limit: int = 63) -> None:
    assert len(name) <= limit and pattern.fullmatch(name), f"invalid name {name!r}"


def _labels(labels: dict[str, str]) -> None:
    for value in labels.values():
        assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), f"invalid label value {value!r}"


def check_semantics(obj: dict[str, Any]) -> None:
    """What the API server would refuse that the schemas do not see."""
    meta = obj["metadata"]
    _dns(meta["name"], DNS_1035 if obj["kind"] == "Service" else DNS_LABEL)
    _labels(meta.get("labels", {}))
    for key in ("app.kubernetes.io/part-of", "app.kubernetes.io/name"):
        assert key in meta["labels"], (meta["name"], key)
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "stackctl"
    if obj["kind"] == "Deployment":
        spec = obj["spec"]
        template = spec["template"]
        _labels(template["metadata"]["labels"])
        for k, v in spec["selector"]["matchLabels"].items():
            assert template["metadata"]["labels"][k] == v, "selector does not match the template"
        pod = template["spec"]
        containers = pod.get("initContainers", []) + pod["containers"]
        assert containers, "a pod needs a container"
        names = [c["name"] for c in containers]
        assert len(names) == len(set(names)), names
        for c in containers:
            _dns(c["name"])
            assert c.get("image")
        volumes = [v["name"] for v in pod.get("volumes", [])]
        assert len(volumes) == len(set(volumes)), volumes
        for v in volumes:
            _dns(v)
        for c in containers:
            paths = [m["mountPath"] for m in c.get("volumeMounts", [])]
            assert len(paths) == len(set(paths)), paths
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes, f"mount of unknown volume {m['name']!r}"
        for c in pod.get("initContainers", []):
            assert c.get("restartPolicy") == "Always", "init containers here are sidecars"
        if "hostname" in pod:
            _dns(pod["hostname"])
        assert len(pod.get("dnsConfig", {}).get("nameservers", [])) <= 3
    if obj["kind"] == "Service":
        ports = obj["spec"]["ports"]
        names = [p["name"] for p in ports]
        assert len(names) == len(set(names))
        for n in names:
            assert len(n) <= 15 and IANA_SVC_NAME.fullmatch(n) and re.search("[a-z]", n), n
        keys = [(p["port"], p["protocol"]) for p in ports]
        assert len(keys) == len(set(keys))
    if obj["kind"] == "NetworkPolicy":
        for expr in obj["spec"]["podSelector"].get("matchExpressions", []):
            assert expr["values"], "an In selector needs values"


_BINARY = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4}


def quantity_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", str(text))
    assert m, text
    return int(m.group(1)) * _BINARY.get(m.group(2) or "", 1)


def quantity_cpus(text: str) -> float:
    text = str(text)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet makes of a command, arg or env value (third_party/forked/golang/
    expansion, as the API documents it: ``$(VAR)`` is replaced when VAR is defined, ``$$``
    is an escaped ``$``, anything else is kept)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end >= 0:
                    name = text[i + 2:end]
                    out.append(env.get(name, f"$({name})"))
                    i = end + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] if kind == "Deployment"
            else o["spec"]["selector"]["app.kubernetes.io/name"]: o
            for o in objects if o["kind"] == kind}


def _seconds(text: Optional[str], default: int) -> int:
    if not text or parse_duration(text) == 0:
        return default
    return max(1, math.ceil(parse_duration(text) / 1e9))


def _expected_probe(hc: Optional[Healthcheck]) -> Optional[dict[str, Any]]:
    if hc is None or hc.disable or not hc.test or hc.test[0] == "NONE":
        return None
    command = list(hc.test[1:]) if hc.test[0] == "CMD" else ["sh", "-c", " ".join(hc.test[1:])]
    return {"exec": {"command": command}, "periodSeconds": _seconds(hc.interval, 30),
            "timeoutSeconds": _seconds(hc.timeout, 30), "failureThreshold": hc.retries or 3}


def assert_carries(stack: Stack, objects: list[dict[str, Any]]) -> None:
    """The manifests hold exactly the spec's sysctls, containers, ports, probes, limits."""
    deployments, services = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    # Kubernetes names of the groups: the Namer is unit-tested on its own.
    groups = Namer(letter_first=True)
    groups.prepare(list(stack.groups))
    assert set(deployments) == {groups.name(g) for g in stack.groups}
    assert set(services) == {groups.name(g) for g, grp in stack.groups.items() if grp.ports}
    for gname, group in stack.groups.items():
        deployment = deployments[groups.name(gname)]
        assert deployment["metadata"]["name"] == groups.name(gname)
        pod = deployment["spec"]["template"]["spec"]
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        sysctls = {s["name"]: s["value"] for s in pod.get("securityContext", {}).get("sysctls", [])}
        assert sysctls == {k: normalize_value(v) for k, v in group.sysctls.items()}

        containers = pod.get("initContainers", []) + pod["containers"]
        if not group.members:
            assert [c["name"] for c in containers] == ["owner"]
            continue
        by_name = {c["name"]: c for c in containers}
        members = Namer()
        members.prepare(list(group.members))
        assert set(by_name) == {members.name(m) for m in group.members}
        for mname, member in group.members.items():
            c = by_name[members.name(mname)]
            env = {e["name"]: e["value"] for e in c.get("env", [])}
            assert c["image"] == member.image
            # What the kubelet runs, after its $(VAR) expansion, is what Docker runs.
            expand = lambda s: kubelet_expand(s, env)  # noqa: E731
            assert ([expand(a) for a in c["command"]] if "command" in c else None) == (
                list(member.entrypoint) if member.entrypoint is not None else None)
            assert ([expand(a) for a in c["args"]] if "args" in c else None) == (
                list(member.command) if member.command is not None else None)
            assert {k: expand(v) for k, v in env.items()} == member.environment
            assert len(c.get("envFrom", [])) == len(member.env_file)
            limits = c.get("resources", {}).get("limits", {})
            if member.mem_limit is None or parse_size(member.mem_limit) == 0:
                assert "memory" not in limits
            else:
                assert quantity_bytes(limits["memory"]) == parse_size(member.mem_limit)
            if member.cpus is None:
                assert "cpu" not in limits
            else:
                assert quantity_cpus(limits["cpu"]) == pytest.approx(member.cpus, abs=0.0005)
            probe = _expected_probe(member.healthcheck)
            assert c.get("livenessProbe") == probe
            assert c.get("readinessProbe") == probe
            start = member.healthcheck and member.healthcheck.start_period
            assert ("startupProbe" in c) == bool(probe and start and parse_duration(start) > 0)
            if "startupProbe" in c:
                assert c["startupProbe"]["exec"] == probe["exec"]  # type: ignore[index]
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert {v.split(":")[1] for v in member.volumes} <= mounts
            assert {t.split(":")[0] for t in member.tmpfs} <= mounts
            assert ("/dev/shm" in mounts) == (group.shm_size is not None)
        if group.ports:
            service = services[groups.name(gname)]
            assert service["metadata"]["name"] == groups.name(gname)
            ports = {(p["port"], p["protocol"]) for p in service["spec"]["ports"]}
            assert ports == {(p.container_port, p.protocol.upper()) for p in group.ports}
            for p in service["spec"]["ports"]:
                assert p["targetPort"] == p["port"]
