"""`stackctl export kubernetes`: every stack we have exports to manifests that the official
Kubernetes schemas accept (strict: no unknown field) and that carry exactly what the spec
says, read back from the YAML text. No engine is involved."""

from __future__ import annotations


import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from kube_check import (assert_carries, by_kind, check_semantics, kubelet_expand, read_yaml,
                        validate_official)
from support import ROOT
from stackctl.errors import SpecError
from stackctl.export import kube_sysctls
from stackctl.export.kube_yaml import render
from stackctl.export.kube_context import escape
from stackctl.export.kubernetes import export_kubernetes
from stackctl.export.names import Namer, dns_label
from stackctl.spec import load
from stackctl.spec.model import Stack
from stackctl.spec.sysctls import IPC_SYSCTLS

EVERYTHING = Path(__file__).resolve().parent / "stacks" / "everything"


def _candidates() -> list[Path]:
    """Every spec file and spec directory in the repository's examples and tests."""
    found: set[Path] = set()
    for top in (ROOT / "specs", ROOT / "tests"):
        for f in top.rglob("*.toml"):
            found.add(f)
            found.add(f.parent)
    return sorted(found)


def _loadable() -> list[tuple[str, Stack]]:
    out = []
    for path in _candidates():
        try:
            out.append((str(path.relative_to(ROOT)), load(path, env={}).stack))
        except SpecError:
            continue  # a bad-spec corpus entry, or a file that is part of a directory stack
    return out


STACKS = _loadable()
IDS = [name for name, _ in STACKS]


def test_every_example_and_good_test_stack_is_exported() -> None:
    """The filter above keeps what must be kept: specs/*, tests/spec/good/*, our rich stack."""
    must = {str(p.relative_to(ROOT)) for p in (ROOT / "specs").iterdir()}
    must |= {str(p.relative_to(ROOT)) for p in (ROOT / "tests/spec/good").iterdir()
             if p.is_dir() or p.suffix == ".toml"}  # not the env files they read
    must.add(str(EVERYTHING.relative_to(ROOT)))
    assert must <= set(IDS), must - set(IDS)


def _objects(stack: Stack, namespace: Optional[str] = None) -> list[dict[str, Any]]:
    text = render(export_kubernetes(stack, namespace=namespace))
    return read_yaml(text)


@pytest.mark.parametrize("name, stack", STACKS, ids=IDS)
def test_manifests_pass_strict_schema_validation(name: str, stack: Stack) -> None:
    objects = _objects(stack, namespace="shop-prod")
    assert objects or not stack.groups
    for obj in objects:
        validate_official(obj)
        check_semantics(obj)
        assert obj["metadata"]["namespace"] == "shop-prod"


@pytest.mark.parametrize("name, stack", STACKS, ids=IDS)
def test_manifests_carry_the_spec(name: str, stack: Stack) -> None:
    assert_carries(stack, _objects(stack))


def test_the_checks_are_not_vacuous() -> None:
    """The strict schemas refuse an unknown field and a wrong type; the semantic checks a
    mount of a volume the pod does not have and a name that is no DNS label."""
    import copy

    import kubernetes_validate

    stack = dict(STACKS)[str(EVERYTHING.relative_to(ROOT))]
    deployment = next(o for o in _objects(stack) if o["kind"] == "Deployment")
    validate_official(deployment)
    for breakage in (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=80),
                     lambda d: d["spec"]["template"]["spec"].update(sysctls=[]),
                     lambda d: d["spec"].update(replicas="one")):
        broken = copy.deepcopy(deployment)
        breakage(broken)
        with pytest.raises(kubernetes_validate.ValidationError):
            validate_official(broken)
    for breakage in (lambda d: d["spec"]["template"]["spec"]["volumes"].pop(),
                     lambda d: d["metadata"].update(name="api_v2")):
        broken = copy.deepcopy(deployment)
        breakage(broken)
        with pytest.raises(AssertionError):
            check_semantics(broken)


def test_the_rich_stack_uses_every_key() -> None:
    """tests/export/stacks/everything sets every key of the model (so the tests above see
    every mapping), and what it maps is where it belongs."""
    import attrs

    from stackctl.spec import model

    stack = dict(STACKS)[str(EVERYTHING.relative_to(ROOT))]
    for cls, instances in ((model.Group, stack.groups.values()),
                           (model.Member, [m for g in stack.groups.values() for m in g.members.values()]),
                           (model.Network, stack.networks.values()),
                           (model.Volume, stack.volumes.values()),
                           (model.Healthcheck, [m.healthcheck for g in stack.groups.values()
                                                for m in g.members.values() if m.healthcheck])):
        for field in attrs.fields(cls):
            values = [getattr(i, field.name) for i in instances]
            assert any(v != field.default and v != getattr(field.default, "factory", lambda: object())()
                       for v in values), f"{cls.__name__}.{field.name} is never set"

    objects = _objects(stack)
    edge = by_kind(objects, "Deployment")["edge"]["spec"]["template"]["spec"]
    assert edge["hostname"] == "edge"
    assert edge["dnsConfig"] == {"nameservers": ["1.1.1.1", "9.9.9.9"],
                                 "searches": ["example.internal"],
                                 "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    assert edge["hostAliases"] == [{"ip": "10.0.0.5", "hostnames": ["db.legacy", "db2.legacy"]},
                                   {"ip": "2001:db8::1", "hostnames": ["v6.legacy"]}]
    assert edge["terminationGracePeriodSeconds"] == 45
    assert [c["name"] for c in edge["initContainers"]] == ["app-1"]  # web depends_on app_1
    web = edge["containers"][0]
    assert web["securityContext"] == {
        "runAsUser": 101, "runAsGroup": 101,
        "capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL"]},
        "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
        "appArmorProfile": {"type": "Localhost", "localhostProfile": "docker-default"},
        "seLinuxOptions": {"type": "svirt_t"}}
    assert web["workingDir"] == "/usr/share/nginx"
    assert web["imagePullPolicy"] == "Always"
    assert web["envFrom"] == [{"secretRef": {"name": "edge-web-env-1"}},
                              {"secretRef": {"name": "edge-web-env-2"}}]
    assert web["startupProbe"]["periodSeconds"] == 2
    assert web["startupProbe"]["failureThreshold"] == 10 + 4  # 20s / 2s, then the retries
    volumes = {v["name"]: v for v in edge["volumes"]}
    assert volumes["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}}
    assert {"name": "host-srv-www", "hostPath": {"path": "/srv/www"}} in edge["volumes"]
    tmpfs = [v for v in edge["volumes"] if v["name"].startswith("tmpfs-")]
    assert [v["emptyDir"] for v in tmpfs] == [{"medium": "Memory"},
                                              {"medium": "Memory", "sizeLimit": "64Mi"}]

    claims = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PersistentVolumeClaim"}
    assert set(claims) == {"pgdata", "media-files"}  # the external one is referenced only
    api = by_kind(objects, "Deployment")["api-v2"]["spec"]["template"]["spec"]
    assert {"name": "data-legacy", "persistentVolumeClaim": {"claimName": "legacy-data"}} in api["volumes"]

    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"back-internal", "solo-isolated"}
    back = policies["back-internal"]
    # db is only on the internal network: isolated to the groups on it; api_v2 also has a
    # route out (default), so it is not restricted, as on the Docker host.
    assert back["podSelector"]["matchExpressions"][0]["values"] == ["db"]
    assert back["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"] == ["api-v2", "db"]
    assert policies["solo-isolated"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "big_shop",
                                        "app.kubernetes.io/name": "solo"}},
        "policyTypes": ["Ingress", "Egress"]}


def test_warnings_name_every_key_without_an_equivalent() -> None:
    stack = dict(STACKS)[str(EVERYTHING.relative_to(ROOT))]
    export = export_kubernetes(stack)
    paths = {w.path for w in export.warnings}
    web = "groups.edge.members.web"
    for path in (f"{web}.ulimits", f"{web}.devices", f"{web}.logging", f"{web}.stop_signal",
                 f"{web}.pids_limit", f"{web}.init", f"{web}.volumes[0]", f"{web}.tmpfs[1]",
                 f"{web}.security_opt[3]", "groups.edge.members.app_1.user",
                 "groups.edge.members.app_1.restart", "groups.edge.ports", "groups.api_v2",
                 "groups.edge.extra_hosts[3]", "networks.proxy", "volumes.legacy",
                 "groups.edge.hostname", "groups.1st.members.only.healthcheck"):
        assert path in paths, path
    text = render(export)
    for w in export.warnings:
        assert f"#   {w}\n" in text


def test_env_file_values_never_reach_the_manifests() -> None:
    stack = load(EVERYTHING, env={}).stack
    export = export_kubernetes(stack, namespace="shop", base_dir="tests/export/stacks/everything")
    text = render(export)
    for secret_file in (EVERYTHING / "web.env", EVERYTHING / "secrets/extra.env"):
        for line in secret_file.read_text().splitlines():
            assert line.split("=", 1)[1] not in text
    assert export.secret_commands() == [
        "kubectl create secret generic edge-web-env-1 --namespace shop "
        "--from-env-file=tests/export/stacks/everything/web.env",
        "kubectl create secret generic edge-web-env-2 --namespace shop "
        "--from-env-file=tests/export/stacks/everything/secrets/extra.env",
    ]
    for command in export.secret_commands():
        assert f"#   {command}\n" in text


def test_env_file_lines_kubectl_reads_otherwise_are_named_without_their_values(tmp_path) -> None:
    """kubectl's --from-env-file keeps quotes, 'export ' and ' #' comments in the value;
    stackctl (as Compose) strips them: the Secret would not hold what the member got."""
    (tmp_path / "stack.toml").write_text(
        '[stack]\nname = "s"\n[groups.g.members.m]\nimage = "busybox:1.36"\n'
        'env_file = ["plain.env", "dotenv.env"]\n')
    (tmp_path / "plain.env").write_text("# a comment\n\nA=1\nB=two words\nC=x#y\n")
    (tmp_path / "dotenv.env").write_text(
        'D=ok\nexport E=s3cr3t-e\nF="s3cr3t f"\nG=s3cr3t-g # note\nH=\'s3cr3t-h\'\n')
    export = export_kubernetes(load(tmp_path, env={}).stack, base_dir=str(tmp_path))
    found = [w for w in export.warnings if w.path.startswith("groups.g.members.m.env_file")]
    assert [w.path for w in found] == ["groups.g.members.m.env_file[1]"]
    assert found[0].message.startswith(f"{tmp_path}/dotenv.env: kubectl create secret "
                                       "--from-env-file takes each value literally")
    assert "line(s) 2, 3, 4, 5 would give the Secret other values" in found[0].message
    text = render(export)
    assert f"#   {found[0]}\n" in text
    for value in ("s3cr3t", "two words"):
        assert value not in text


def test_same_stack_same_bytes() -> None:
    for _, stack in STACKS:
        assert render(export_kubernetes(stack)) == render(export_kubernetes(stack))


# -------------------------------------------------------------------------------- sysctls
def test_safe_set_is_the_kubelets_of_the_target_release() -> None:
    assert kube_sysctls.KUBERNETES_VERSION == "1.37"
    assert set(kube_sysctls.SAFE_SYSCTLS) == {
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def test_kubelet_flag_lists_exactly_the_unsafe_sysctls_and_refuses_none() -> None:
    stack = dict(STACKS)[str(EVERYTHING.relative_to(ROOT))]
    export = export_kubernetes(stack)
    assert export.kubelet_flag == ("--allowed-unsafe-sysctls=fs.mqueue.msg_max,kernel.sem,"
                                   "kernel.shmmax,net.core.somaxconn")
    assert render(export).startswith("# Kubernetes manifests of stackctl stack 'big_shop'")
    head = render(export).split("\n---\n", 1)[0]
    assert f"#   {export.kubelet_flag}\n" in head
    assert "net.ipv4.tcp_rmem is safe since Kubernetes 1.32" in head
    # Every IPC sysctl the spec accepts exports; none is refused.
    # kernel.sem takes its four values in one string; every other IPC sysctl one number.
    ipc = {name: "250 32000 100 128" if name == "kernel.sem" else "1"
           for name in sorted(IPC_SYSCTLS)}
    text = "[stack]\nname = \"s\"\n[groups.g]\nsysctls = { " + ", ".join(
        f'"{k}" = "{v}"' for k, v in ipc.items()) + ', "net.ipv4.tcp_syncookies" = 1 }\n'
    loaded = _load_text(text)
    flag = export_kubernetes(loaded).kubelet_flag
    assert flag == "--allowed-unsafe-sysctls=" + ",".join(sorted(set(IPC_SYSCTLS) - {"kernel.shm_rmid_forced"}))


def test_all_safe_sysctls_need_no_flag() -> None:
    stack = _load_text('[stack]\nname = "s"\n[groups.g]\nsysctls = { "net.ipv4.tcp_syncookies" = 1 }\n')
    export = export_kubernetes(stack)
    assert export.kubelet_flag is None
    assert "no --allowed-unsafe-sysctls needed" in render(export)


def _load_text(text: str) -> Stack:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "stack.toml"
        f.write_text(text)
        return load(f, env={}).stack


# -------------------------------------------------------------------------- small parts
@pytest.mark.parametrize("text", ["$HOME", "$(HOME)", "$$(HOME)", "$$", "a$", "$", "$(",
                                  "echo $$ $(x) $$$(y)", "()$$$(", "$((1+2))"])
def test_escape_survives_kubelet_expansion(text: str) -> None:
    assert kubelet_expand(escape(text), {"HOME": "/root", "x": "X", "y": "Y"}) == text


def test_escape_leaves_plain_shell_variables_alone() -> None:
    assert escape("echo $HOME ${USER}") == "echo $HOME ${USER}"


def test_namer_converts_only_what_it_must_and_keeps_names_apart() -> None:
    n = Namer()
    n.prepare(["api_v2", "api-v2", "web"])
    assert n.name("web") == "web" and n.name("api-v2") == "api-v2"
    assert n.name("api_v2").startswith("api-v2-") and len(n.name("api_v2")) == len("api-v2-") + 5
    assert n.renamed == {"api_v2": n.name("api_v2")}
    assert Namer(letter_first=True).name("1st") == "x-1st"
    assert len(dns_label("a" * 100)) == 63
    assert dns_label("Media_Files.v2") == "media-files-v2"


def test_invalid_namespace_is_refused() -> None:
    from stackctl.errors import ExportError

    stack = dict(STACKS)["specs/hello"]
    with pytest.raises(ExportError, match="--namespace 'Prod_1' is not a valid namespace"):
        export_kubernetes(stack, namespace="Prod_1")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


def test_member_dependencies_start_first_as_sidecars_in_order() -> None:
    stack = _load_text('[stack]\nname = "s"\n[groups.g.members.c]\nimage = "busybox"\n'
                       'depends_on = ["b"]\n[groups.g.members.b]\nimage = "busybox"\n'
                       'depends_on = ["a"]\n[groups.g.members.a]\nimage = "busybox"\n'
                       '[groups.g.members.z]\nimage = "busybox"\n')
    pod = by_kind(_objects(stack), "Deployment")["g"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["a", "b"]
    assert [c["restartPolicy"] for c in pod["initContainers"]] == ["Always", "Always"]
    assert [c["name"] for c in pod["containers"]] == ["c", "z"]


def test_internal_network_with_a_route_out_for_everyone_needs_no_policy() -> None:
    stack = _load_text('[stack]\nname = "s"\n[networks.back]\ninternal = true\n'
                       '[groups.a]\nnetworks = ["default", "back"]\n'
                       '[groups.a.members.m]\nimage = "busybox"\n')
    export = export_kubernetes(stack)
    assert not [d for d in export.documents if d.kind == "NetworkPolicy"]
    assert any(w.path == "networks.back" and "no NetworkPolicy is needed" in w.message
               for w in export.warnings)


def test_a_group_without_members_runs_its_owner_image() -> None:
    stack = _load_text('[stack]\nname = "s"\n[groups.lonely]\nports = ["8080:80"]\n'
                       'owner_image = "busybox:1.36"\nowner_command = ["sleep", "$(x)"]\n')
    objects = _objects(stack)
    for obj in objects:
        validate_official(obj)
    pod = by_kind(objects, "Deployment")["lonely"]["spec"]["template"]["spec"]
    assert pod["containers"] == [{"name": "owner", "image": "busybox:1.36",
                                  "args": ["sleep", "$$(x)"]}]
