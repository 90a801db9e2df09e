"""`stackctl convert`, the pure part: Compose files in, spec text and notes out.

Every test reads real files (tmp_path) and parses the output with tomllib, so it checks
what an operator gets, not internals. Tests that go through ``convert_files`` also get the
output validated by stackctl's own loader (the converter refuses to return a spec that
would not validate).
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stackctl.convert import ConvertError, convert_files
from stackctl.convert.compose import convert, keep_variables
from stackctl.convert.compose_files import read_project
from stackctl.spec import load

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def write(directory: Path, name: str, text: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def run(tmp_path: Path, *texts: str, stack: str | None = "app", out: Path | None = None,
        env: dict[str, str] | None = None) -> tuple[dict[str, Any], Any]:
    files = [write(tmp_path / "proj", f"compose{i}.yml", t) for i, t in enumerate(texts)]
    result = convert_files(files, (out or tmp_path / "out") / "stack.toml", stack, env or {})
    return tomllib.loads(result.text), result


def unwrapped(text: str) -> str:
    """The output with wrapped comment lines joined again."""
    return text.replace("\n#   ", " ")


def member(doc: dict[str, Any], group: str, name: str | None = None) -> dict[str, Any]:
    return doc["groups"][group]["members"][name or group]


# ------------------------------------------------------------------ reading YAML
def test_yaml_is_read_as_compose_reads_it_yaml_1_2(tmp_path):
    doc, _ = run(tmp_path, """
        services:
          web:
            image: busybox:1.36
            restart: no
            ports:
              - 22:22
    """)
    # YAML 1.1 would read 'no' as false and 22:22 as the base-60 integer 1342.
    web = member(doc, "web")
    assert web["restart"] == "no"
    assert doc["groups"]["web"]["ports"] == ["22:22"]


def test_yes_is_text_in_yaml_1_2_but_still_a_boolean_to_compose(tmp_path):
    doc, _ = run(tmp_path, """
        services:
          web: {image: "busybox:1.36", read_only: yes, init: off, environment: {A: yes}}
    """)
    assert member(doc, "web") == {"image": "busybox:1.36", "environment": {"A": "yes"},
                                  "init": False, "read_only": True}
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              web: {image: "busybox:1.36", read_only: maybe}
        """)
    assert "services.web.read_only: expected a bool, got 'maybe'" in str(err.value)


def test_a_key_defined_twice_is_an_error_with_its_line(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              web:
                image: a
                image: b
        """)
    assert ("line 5, column 5: invalid YAML: mapping key 'image' is defined twice "
            "(first at line 4)") in str(err.value)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, "services:\n  web: [\n")
    assert "compose0.yml: line 3, column 1: invalid YAML" in str(err.value)


def test_anchors_merge_keys_and_extension_fields(tmp_path):
    doc, result = run(tmp_path, """
        x-logging: &logging
          driver: json-file
          options: {max-size: "1m", max-file: "3"}
        x-common: &common
          image: busybox:1.36
          restart: unless-stopped
          logging: *logging
        services:
          a:
            <<: *common
            x-notes: ignored
          b:
            <<: *common
            restart: always
            logging:
              <<: *logging
              options: {max-size: "5m"}
    """)
    assert member(doc, "a") == {"image": "busybox:1.36", "restart": "unless-stopped",
                                "logging": {"driver": "json-file",
                                            "options": {"max-size": "1m", "max-file": "3"}}}
    assert member(doc, "b")["restart"] == "always"
    assert member(doc, "b")["logging"] == {"driver": "json-file", "options": {"max-size": "5m"}}
    assert not result.notes  # x- fields are Compose's to ignore, not notes


# --------------------------------------------------------------------- merging
def test_several_files_merge_with_composes_rules(tmp_path):
    doc, _ = run(tmp_path, """
        services:
          web:
            image: web:1
            command: ["serve", "--old"]
            environment: [A=1, B=2]
            labels: {team: a}
            ports: ["8080:80"]
            dns: [1.1.1.1]
            volumes: ["data:/data", "logs:/logs"]
            depends_on: [db]
            healthcheck: {test: ["CMD", "old"], interval: 5s}
          db: {image: db:1}
        volumes: {data: {}, logs: {}, other: {}}
    """, """
        services:
          web:
            image: web:2
            command: ["serve"]
            environment: {B: "3", C: "4"}
            labels: [tier=front]
            ports: ["8443:443"]
            dns: [8.8.8.8]
            volumes: ["other:/data"]
            depends_on:
              db: {condition: service_healthy}
            healthcheck: {test: ["CMD", "new"]}
    """)
    web = member(doc, "web")
    assert web["image"] == "web:2"                       # scalars: later wins
    assert web["command"] == ["serve"]                   # command: replaced, not appended
    assert web["environment"] == {"A": "1", "B": "3", "C": "4"}  # by key, later wins
    assert web["labels"] == {"team": "a", "tier": "front"}
    assert doc["groups"]["web"]["ports"] == ["8080:80", "8443:443"]  # appended
    assert doc["groups"]["web"]["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert web["volumes"] == ["other:/data", "logs:/logs"]  # unique by target
    assert web["healthcheck"] == {"test": ["CMD", "new"], "interval": "5s"}
    assert doc["groups"]["web"]["depends_on"] == ["db"]


def test_reset_and_override_tags(tmp_path):
    doc, _ = run(tmp_path, """
        services:
          web:
            image: web:1
            ports: ["8080:80"]
            environment: {A: "1", B: "2"}
            cap_add: [NET_ADMIN]
    """, """
        services:
          web:
            ports: !override ["9090:80"]
            cap_add: !reset []
            environment:
              B: !reset null
    """)
    assert doc["groups"]["web"]["ports"] == ["9090:80"]
    assert "cap_add" not in member(doc, "web")
    assert member(doc, "web")["environment"] == {"A": "1"}


def test_same_port_twice_is_published_once(tmp_path):
    doc, _ = run(tmp_path, """
        services:
          web: {image: "web:1", ports: ["8080:80"]}
    """, """
        services:
          web:
            ports:
              - {target: 80, published: "8080"}
    """)
    assert doc["groups"]["web"]["ports"] == ["8080:80"]


# ------------------------------------------------------------ list and map forms
def test_list_and_map_forms_mean_the_same(tmp_path):
    lists, _ = run(tmp_path / "l", """
        services:
          db: {image: "db:1"}
          web:
            image: web:1
            environment: [A=1, "B=x=y", C]
            labels: [team=shop, solo]
            sysctls: [net.core.somaxconn=1024, "net.ipv4.ip_local_port_range=1024 65000"]
            extra_hosts: ["db.legacy:10.0.0.5", "v6=::1"]
            depends_on: [db]
            ulimits: {nproc: 512, nofile: {soft: 1024, hard: 4096}}
    """)
    maps, _ = run(tmp_path / "m", """
        services:
          db: {image: "db:1"}
          web:
            image: web:1
            environment: {A: 1, B: "x=y", C: null}
            labels: {team: shop, solo: ""}
            sysctls: {net.core.somaxconn: 1024, net.ipv4.ip_local_port_range: "1024 65000"}
            extra_hosts: {db.legacy: 10.0.0.5, v6: "::1"}
            depends_on: {db: {condition: service_started}}
            ulimits:
              nproc: 512
              nofile: {soft: 1024, hard: 4096}
    """)
    assert lists == maps
    web = member(lists, "web")
    assert web["environment"] == {"A": "1", "B": "x=y", "C": "${C}"}
    assert web["labels"] == {"team": "shop", "solo": ""}
    assert web["ulimits"] == {"nproc": 512, "nofile": {"soft": 1024, "hard": 4096}}
    group = lists["groups"]["web"]
    assert group["sysctls"] == {"net.core.somaxconn": 1024,
                                "net.ipv4.ip_local_port_range": "1024 65000"}
    assert group["extra_hosts"] == ["db.legacy:10.0.0.5", "v6:[::1]"]
    assert group["depends_on"] == ["db"]


def test_ports_short_and_long_syntax(tmp_path):
    doc, result = run(tmp_path, """
        services:
          web:
            image: web:1
            ports:
              - "8080:80"
              - 127.0.0.1:8443:443
              - "[::1]:8444:443"
              - 5353:53/udp
              - "7000-7002:7000-7002"
              - target: 9000
                published: 9001
                host_ip: 127.0.0.1
                protocol: udp
              - "3000"
    """)
    assert doc["groups"]["web"]["ports"] == [
        "8080:80", "127.0.0.1:8443:443", "[::1]:8444:443", "5353:53/udp", "7000:7000",
        "7001:7001", "7002:7002", "127.0.0.1:9001:9000/udp"]
    assert [n.path for n in result.notes] == ["services.web.ports[6]"]
    assert "3000 has no host port" in result.notes[0].message


# ------------------------------------------------------------------- variables
@pytest.mark.parametrize("compose, spec", [
    ("${TAG}", "${TAG}"), ("${TAG:-1.2}", "${TAG:-1.2}"), ("$TAG", "${TAG}"),
    ("${TAG-1.2}", "${TAG:-1.2}"), ("${TAG:?set TAG}", "${TAG}"), ("$$HOME", "$$HOME"),
    ("a${X}b$Y", "a${X}b${Y}"),
])
def test_variables_become_stackctl_interpolation(compose, spec):
    assert keep_variables(compose) == spec


def test_variables_are_kept_not_expanded(tmp_path):
    doc, _ = run(tmp_path, """
        services:
          web:
            image: "web:${TAG:-1.0}"
            environment: {TOKEN: "${TOKEN}", HOME_DIR: $$HOME}
            ports: ["${PORT:-8080}:80"]
    """, env={"TAG": "9.9", "TOKEN": "secret", "PORT": "1"})
    web = member(doc, "web")
    assert web["image"] == "web:${TAG:-1.0}"
    assert web["environment"] == {"TOKEN": "${TOKEN}", "HOME_DIR": "$$HOME"}
    assert doc["groups"]["web"]["ports"] == ["${PORT:-8080}:80"]


def test_a_dotenv_file_is_pointed_out_when_variables_are_used(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / ".env").write_text("TAG=1.0\n")
    _, plain = run(tmp_path, "services:\n  web: {image: 'web:1'}\n")
    assert not plain.notes
    _, result = run(tmp_path, "services:\n  web: {image: 'web:${TAG}'}\n")
    assert [n.path for n in result.notes] == [".env"]
    assert "set -a; . ./.env; set +a" in result.notes[0].hint
    assert "# Not converted:\n#   .env: not converted" in result.text


def test_variable_where_stackctl_needs_a_number_is_an_error(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              web: {image: "web:1", cpus: "${CPUS:-0.5}", command: "echo ${A:+set}"}
        """)
    text = str(err.value)
    assert "services.web.cpus: '${CPUS:-0.5}' is a variable, but stackctl reads cpus as a " \
           "number" in text
    assert "services.web.command: '${A:+set}' uses ${VAR:+...}" in text


# -------------------------------------------------------- what is not converted
def test_what_cannot_be_converted_is_listed_and_commented(tmp_path):
    doc, result = run(tmp_path, """
        services:
          web:
            image: web:1
            build: .
            container_name: my-web
            privileged: true
            profiles: [debug]
            secrets: [token]
            expose: ["80"]
          agent:
            image: agent:1
            network_mode: host
        secrets:
          token: {file: ./token}
    """)
    paths = [n.path for n in result.notes]
    assert paths == ["secrets", "services.agent.network_mode", "services.web.build",
                     "services.web.container_name", "services.web.privileged",
                     "services.web.profiles", "services.web.secrets", "services.web.expose"]
    for note in result.notes:
        assert note.file.endswith("compose0.yml") and note.message.startswith("not converted")
    # ... and each is a comment in the output, next to the member it concerns.
    for path in paths:
        assert f"# {path}: not converted" in result.text or f"#   {path}: not converted" \
            in result.text, path
    before_web = result.text.split("[groups.web.members.web]")[0].rsplit("[groups.web]", 1)[1]
    assert "services.web.build: not converted" in before_web
    assert member(doc, "agent") == {"image": "agent:1"}


def test_what_unmasks_proc_sys_is_left_out_with_a_note_and_the_rest_converts(tmp_path):
    """stackctl refuses SYS_ADMIN (ALL holds it), privileged and systempaths=unconfined on
    members: each lets a member remount /proc/sys and rewrite host-wide sysctls."""
    doc, result = run(tmp_path, """
        services:
          fuse:
            image: "fuse:1"
            privileged: true
            cap_add: [NET_ADMIN, CAP_SYS_ADMIN, all]
            security_opt: ["systempaths=unconfined", "no-new-privileges:true"]
          calm:
            image: "calm:1"
            privileged: false
    """)
    assert member(doc, "fuse")["cap_add"] == ["NET_ADMIN"]
    assert member(doc, "fuse")["security_opt"] == ["no-new-privileges:true"]
    assert member(doc, "calm") == {"image": "calm:1"}
    notes = {n.path: n for n in result.notes}
    assert sorted(notes) == ["services.fuse.cap_add[1]", "services.fuse.cap_add[2]",
                             "services.fuse.privileged", "services.fuse.security_opt[0]"]
    assert notes["services.fuse.cap_add[1]"].message == (
        "not converted: stackctl refuses 'CAP_SYS_ADMIN' on a member: with it a process can "
        "remount /proc/sys read-write and rewrite host-wide sysctls")
    assert "'all'" in notes["services.fuse.cap_add[2]"].message
    assert "/proc/sys" in notes["services.fuse.privileged"].message
    assert "'systempaths=unconfined'" in notes["services.fuse.security_opt[0]"].message
    text = unwrapped(result.text)
    for path in notes:
        assert f"# {path}: not converted: stackctl refuses" in text, path


def test_a_seccomp_profile_file_is_inlined_as_compose_sends_it(tmp_path):
    """Compose reads the profile file and sends the engine its JSON; the spec holds it."""
    write(tmp_path / "proj", "profile.json", '{"defaultAction": "SCMP_ACT_ALLOW",\n'
          ' "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}\n')
    doc, result = run(tmp_path, """
        services:
          app: {image: "app:1", security_opt: ["seccomp:./profile.json", "seccomp=unconfined"]}
    """)
    assert member(doc, "app")["security_opt"] == [
        'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO",'
        '"names":["mount"]}]}', "seccomp=unconfined"]
    assert not result.notes
    with pytest.raises(ConvertError) as err:
        run(tmp_path / "missing", """
            services:
              app: {image: "app:1", security_opt: ["seccomp=./nowhere.json"]}
        """)
    (problem,) = err.value.problems
    assert problem.path == "services.app.security_opt[0]"
    assert problem.message.startswith("cannot read the seccomp profile './nowhere.json'")
    assert "seccomp=unconfined" in problem.hint


def test_build_without_image_is_an_error_naming_the_service(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              ok: {image: "ok:1"}
              api:
                build: ./api
        """)
    assert len(err.value.problems) == 1
    problem = err.value.problems[0]
    assert problem.file.endswith("compose0.yml") and problem.path == "services.api"
    assert problem.message == "service 'api' has build but no image"
    assert "docker compose build" in problem.hint


def test_a_service_that_is_not_a_mapping_is_an_error(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              web:
              db: {image: "db:1"}
        """)
    assert [(p.path, p.message) for p in err.value.problems] == [
        ("services.web", "expected a mapping")]


def test_unknown_keys_are_errors_as_in_compose(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              web: {image: "web:1", imagee: "x"}
            servces: {}
        """)
    assert [p.path for p in err.value.problems] == ["servces", "services.web.imagee"]


# -------------------------------------------------------------------- groups
VPN = """
    services:
      vpn:
        image: vpn:1
        cap_add: [NET_ADMIN]
        devices: [/dev/net/tun]
        ports: ["8080:80", "6881:6881/udp"]
        sysctls: {net.ipv4.conf.all.src_valid_mark: 1}
        hostname: vpn
        dns: [1.1.1.1]
      torrent:
        image: torrent:1
        network_mode: "service:vpn"
      web:
        image: web:1
        network_mode: "container:gateway"
        depends_on: [torrent]
      proxy:
        image: proxy:1
        network_mode: service:web
      gateway-alias:
        image: other:1
        container_name: gateway
        ports: ["9000:9000"]
"""


def test_joined_services_become_members_of_one_group(tmp_path):
    doc, _ = run(tmp_path, VPN.replace('"container:gateway"', "service:vpn"))
    vpn = doc["groups"]["vpn"]
    assert list(vpn["members"]) == ["vpn", "torrent", "web", "proxy"]
    assert vpn["ports"] == ["8080:80", "6881:6881/udp"]
    assert vpn["sysctls"] == {"net.ipv4.conf.all.src_valid_mark": 1}
    assert vpn["hostname"] == "vpn" and vpn["dns"] == ["1.1.1.1"]
    assert vpn["members"]["vpn"] == {"image": "vpn:1", "cap_add": ["NET_ADMIN"],
                                     "devices": ["/dev/net/tun"]}
    # joiners start after the service whose namespace they joined, as Compose orders them
    assert vpn["members"]["torrent"]["depends_on"] == ["vpn"]
    assert vpn["members"]["web"]["depends_on"] == ["vpn", "torrent"]
    assert vpn["members"]["proxy"]["depends_on"] == ["web"]
    assert doc["groups"]["gateway-alias"]["ports"] == ["9000:9000"]


def test_container_mode_joins_the_service_with_that_container_name(tmp_path):
    doc, _ = run(tmp_path, VPN)
    assert list(doc["groups"]["gateway-alias"]["members"]) == ["gateway-alias", "web", "proxy"]


def test_group_and_member_comments_name_the_compose_service(tmp_path):
    _, result = run(tmp_path, VPN.replace('"container:gateway"', "service:vpn"))
    text = result.text
    assert '# Group "vpn": the network namespace of Compose service "vpn", joined by' in text
    assert '# Compose service "torrent" (network_mode: service:vpn).\n' \
           '[groups.vpn.members.torrent]' in text
    assert '# Compose service "vpn".\n[groups.vpn.members.vpn]' in text


@pytest.mark.parametrize("key, value", [
    ("ports", '["9000:9000"]'), ("hostname", "t"), ("dns", "[8.8.8.8]"),
    ("extra_hosts", '["a:10.0.0.1"]'),
])
def test_a_joiner_that_sets_a_namespace_key_is_an_error(tmp_path, key, value):
    text = VPN.replace('"container:gateway"', "service:vpn").replace(
        "network_mode: \"service:vpn\"", f"network_mode: service:vpn\n        {key}: {value}")
    with pytest.raises(ConvertError) as err:
        run(tmp_path, text)
    assert [p.path for p in err.value.problems] == [f"services.torrent.{key}"]
    assert "move it to service 'vpn'" in err.value.problems[0].hint


def test_a_joiners_sysctls_move_to_the_group(tmp_path):
    text = VPN.replace('"container:gateway"', "service:vpn").replace(
        "network_mode: \"service:vpn\"",
        "network_mode: service:vpn\n        sysctls: [net.core.somaxconn=1024]")
    doc, result = run(tmp_path, text)
    assert doc["groups"]["vpn"]["sysctls"] == {"net.ipv4.conf.all.src_valid_mark": 1,
                                               "net.core.somaxconn": 1024}
    assert "services.torrent.sysctls" in [n.path for n in result.notes]


def test_joining_an_unknown_service_is_an_error(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              app: {image: "app:1", network_mode: "service:nope"}
        """)
    assert "'nope' is not a service of this project" in str(err.value)


# ---------------------------------------------------------------- depends_on
def test_depends_on_within_and_across_groups(tmp_path):
    doc, result = run(tmp_path, """
        services:
          db:
            image: db:1
            healthcheck: {test: "pg_isready", interval: 5s, retries: 3}
          migrate: {image: "m:1"}
          vpn: {image: "vpn:1"}
          app:
            image: app:1
            network_mode: service:vpn
            depends_on:
              vpn: {condition: service_started}
              db: {condition: service_healthy}
              migrate: {condition: service_completed_successfully}
    """)
    assert member(doc, "db")["healthcheck"] == {"test": "pg_isready", "interval": "5s",
                                                "retries": 3}
    assert doc["groups"]["vpn"]["depends_on"] == ["db"]
    assert doc["groups"]["vpn"]["members"]["app"]["depends_on"] == ["vpn"]
    assert "stackctl gates on health wherever a healthcheck exists" in unwrapped(result.text)
    assert [n.path for n in result.notes] == ["services.app.depends_on.migrate"]


def test_a_health_gate_within_a_group_is_order_with_a_warning(tmp_path):
    doc, result = run(tmp_path, """
        services:
          vpn: {image: "vpn:1", healthcheck: {test: "true"}}
          app:
            image: app:1
            network_mode: service:vpn
            depends_on: {vpn: {condition: service_healthy}}
    """)
    assert doc["groups"]["vpn"]["members"]["app"]["depends_on"] == ["vpn"]
    assert [(n.path, n.message.split(":")[0]) for n in result.notes] == [
        ("services.app.depends_on.vpn", "converted to member order")]
    assert "does not wait for it to be healthy" in unwrapped(result.text)


def test_a_cycle_made_by_grouping_is_an_error(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              a: {image: "a:1", depends_on: [c]}
              b: {image: "b:1", network_mode: "service:a"}
              c: {image: "c:1", depends_on: [b]}
        """)
    assert "depends_on across groups forms a cycle: a -> c -> a" in str(err.value)


# ------------------------------------------------------ limits, volumes, networks
def test_deploy_limits_and_restart_policy(tmp_path):
    doc, _ = run(tmp_path, """
        services:
          web:
            image: web:1
            deploy:
              replicas: 1
              resources:
                limits: {memory: 512M, cpus: "0.5", pids: 100}
              restart_policy: {condition: on-failure}
    """)
    assert member(doc, "web") == {"image": "web:1", "restart": "on-failure",
                                  "mem_limit": "512M", "cpus": 0.5, "pids_limit": 100}


def test_top_level_volumes_and_networks(tmp_path):
    doc, _ = run(tmp_path, """
        services:
          db:
            image: db:1
            networks: [back]
            volumes:
              - dbdata:/var/lib/db
              - type: volume
                source: shared
                target: /shared
                read_only: true
              - type: tmpfs
                target: /cache
                tmpfs: {size: 1048576}
          web:
            image: web:1
            networks:
              default:
              proxy:
              back: {aliases: [www]}
        networks:
          back: {internal: true, ipam: {config: [{subnet: 10.40.0.0/24}]}}
          proxy: {external: true, name: traefik}
        volumes:
          dbdata: {driver: local, labels: [backup=daily]}
          shared: {external: true}
    """)
    assert doc["networks"] == {"back": {"internal": True, "subnet": "10.40.0.0/24"},
                               "proxy": {"external": True, "name": "traefik"}}
    assert doc["volumes"] == {"dbdata": {"driver": "local", "labels": {"backup": "daily"}},
                              "shared": {"external": True, "name": "shared"}}
    assert doc["groups"]["db"]["networks"] == ["back"]
    assert doc["groups"]["web"]["networks"] == ["default", "proxy", "back"]
    assert member(doc, "db")["volumes"] == ["dbdata:/var/lib/db", "shared:/shared:ro"]
    assert member(doc, "db")["tmpfs"] == ["/cache:size=1048576"]


def test_an_undeclared_named_volume_is_an_error(tmp_path):
    with pytest.raises(ConvertError) as err:
        run(tmp_path, """
            services:
              db: {image: "db:1", volumes: ["data:/data"]}
        """)
    assert "services.db.volumes[0]: volume 'data' is not declared" in str(err.value)


def test_env_files_are_rewritten_relative_to_the_output(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "db.env").write_text("A=1\n")
    doc, _ = run(tmp_path, """
        services:
          db:
            image: db:1
            env_file: [db.env, {path: ./missing.env, required: false}]
    """, out=tmp_path / "deploy" / "db")
    assert member(doc, "db")["env_file"] == ["../../proj/db.env"]
    assert os.path.exists(os.path.normpath(tmp_path / "deploy" / "db" / "../../proj/db.env"))
    # Only optional files, none there: no env_file key at all, not an empty list.
    doc, result = run(tmp_path / "b", """
        services:
          db: {image: "db:1", env_file: [{path: ./missing.env, required: false}]}
    """)
    assert member(doc, "db") == {"image": "db:1"}
    assert [n.path for n in result.notes] == ["services.db.env_file[0]"]


def test_relative_bind_mounts_are_rewritten_relative_to_the_output(tmp_path):
    """The text only: validating relative bind paths comes with the volumes work (the
    next test checks that the spec validates)."""
    files = [write(tmp_path / "proj", "compose.yml", """
        services:
          web:
            image: web:1
            volumes: ["./www:/www:ro", "../shared:/shared", "~/cfg:/cfg", "/srv:/srv"]
    """)]
    result = convert(read_project(files), tmp_path / "out" / "web")
    web = tomllib.loads(result.text)["groups"]["web"]["members"]["web"]
    assert web["volumes"] == ["../../proj/www:/www:ro", "../../shared:/shared",
                              "${HOME}/cfg:/cfg", "/srv:/srv"]


def test_relative_bind_mounts_validate(tmp_path):
    (tmp_path / "proj" / "www").mkdir(parents=True)
    doc, _ = run(tmp_path, """
        services:
          web: {image: "web:1", volumes: ["./www:/www:ro"]}
    """)
    assert member(doc, "web")["volumes"] == ["../proj/www:/www:ro"]


# ---------------------------------------------------------------- stack name
def test_stack_name_from_compose_name_directory_or_environment(tmp_path):
    compose = "services:\n  web: {image: 'web:1'}\n"
    _, result = run(tmp_path / "a", "name: Shop_Front\n" + compose, stack=None)
    assert result.stack == "shop_front"
    files = [write(tmp_path / "My Media.Box", "compose.yml", compose)]
    assert convert_files(files, tmp_path / "o" / "stack.toml").stack == "mymediabox"
    assert convert_files(files, tmp_path / "o" / "stack.toml",
                         env={"COMPOSE_PROJECT_NAME": "media"}).stack == "media"
    assert convert_files(files, tmp_path / "o" / "stack.toml", stack="x1").stack == "x1"
    with pytest.raises(ConvertError, match="invalid stack name 'Bad Name'"):
        convert_files(files, tmp_path / "o" / "stack.toml", stack="Bad Name")


# ---------------------------------------------------------- output properties
def test_output_is_deterministic_and_validates(tmp_path):
    text = VPN.replace('"container:gateway"', "service:vpn")
    first = run(tmp_path / "1", text)[1].text
    again = run(tmp_path / "1", text)[1].text
    assert first == again
    spec = tmp_path / "spec" / "stack.toml"
    spec.parent.mkdir()
    spec.write_text(first)
    stack = load(spec, env={}).stack
    assert sorted(stack.groups) == ["gateway-alias", "vpn"]
    assert stack.groups["vpn"].members["vpn"].cap_add == ("NET_ADMIN",)


def test_long_tables_are_written_as_subtables(tmp_path):
    env = "\n".join(f"              VAR_{i}: value-{i}" for i in range(5))
    _, result = run(tmp_path, f"""
        services:
          web:
            image: web:1
            environment:
{env}
    """)
    assert "[groups.web.members.web.environment]\nVAR_0 = \"value-0\"\n" in result.text


# ------------------------------------------------- measured against Compose itself
def test_merge_matches_docker_compose_config(tmp_path):
    """compose-merge-a.yml + compose-merge-b.yml, merged. The expected values are what
    `docker compose -f a -f b config --no-interpolate` (Compose v2.40.3) printed for them,
    in its canonical form, written here in the spec's forms."""
    here = Path(__file__).parent
    # convert() without the validation step: ./www is a relative bind mount (issue 12)
    project = read_project([str(here / "compose-merge-a.yml"), str(here / "compose-merge-b.yml")])
    result = convert(project, here, env={})
    doc = tomllib.loads(result.text)
    web, group = member(doc, "web"), doc["groups"]["web"]
    assert doc["stack"]["name"] == "diffproj"
    assert web["image"] == "web:2"
    assert web["command"] == ["serve"]
    assert web["environment"] == {"A": "1", "B": "3", "C": "${C}", "D": "4"}
    assert web["labels"] == {"team": "a", "tier": "front"}
    assert group["ports"] == ["8080:80", "127.0.0.1:9000:9000/udp", "7000:7000", "7001:7001",
                              "8443:443"]
    assert group["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert web["volumes"] == ["other:/data", "logs:/logs", "./www:/www:ro"]
    assert group["depends_on"] == ["db"]  # condition service_healthy
    assert group["sysctls"] == {"net.core.somaxconn": 2048, "net.ipv4.tcp_syncookies": 1}
    assert group["extra_hosts"] == ["a:10.0.0.1", "b:10.0.0.2"]
    assert web["healthcheck"] == {"test": ["CMD", "new"], "interval": "5s"}
    assert web["logging"] == {"driver": "json-file",
                              "options": {"max-size": "1m", "max-file": "3"}}
    assert web["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    assert web["ulimits"] == {"nofile": 500}
    assert web["restart"] == "no"
    assert doc["groups"]["db"]["networks"] == []  # network_mode: none


def test_the_output_of_docker_compose_config_converts_to_the_same_spec():
    """The fallback docs/migrating.md gives for extends and include: convert what
    `docker compose config --no-interpolate` (v2.40.3) printed for media/compose.yaml (its
    project directory written as /srv/media). Its canonical forms (long ports with
    mode: ingress, a named default network, restart: true on the implicit dependency of
    network_mode) must give the same spec and no extra warnings."""
    here = Path(__file__).parent / "media"
    original = convert(read_project([str(here / "compose.yaml")]), here)
    resolved = convert(read_project([str(here / "compose-config.yaml")]), here)
    converted = tomllib.loads(resolved.text.replace("/srv/media/", "./"))
    # Compose's config names the volume as Compose does; kept, since it was written
    assert converted["volumes"]["jellyfin-cache"].pop("name") == "media_jellyfin-cache"
    assert converted == tomllib.loads(original.text)
    assert sorted(n.path for n in resolved.notes) == sorted(n.path for n in original.notes)
