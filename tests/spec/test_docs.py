"""docs/spec.md documents every key the model has, and its examples are valid."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from stackctl.spec import load, model
from support import ROOT

DOC = (ROOT / "docs" / "spec.md").read_text()


@pytest.mark.parametrize("cl", [model.StackInfo, model.Defaults, model.Group, model.Member,
                                model.Network, model.Volume],
                         ids=lambda c: c.__name__)
def test_every_key_has_a_row_in_the_reference(cl: type) -> None:
    for field in attrs.fields(cl):
        assert re.search(rf"^\| `{field.name}` \|", DOC, re.M), f"{cl.__name__}.{field.name}"


def test_every_refused_key_is_documented() -> None:
    for key in [*model.GROUP_ONLY_KEYS, *model.GROUP_UNSUPPORTED_KEYS, *model.MEMBER_UNSUPPORTED_KEYS]:
        assert f"`{key}`" in DOC, key


# Every key of a Compose service (compose-spec, schema/compose-spec.json, 2024-2025).
COMPOSE_SERVICE_KEYS = """annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent
command configs container_name cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period
cpu_rt_runtime cpu_shares cpus cpuset credential_spec depends_on deploy develop
device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint env_file environment
expose extends external_links extra_hosts gpus group_add healthcheck hostname image init ipc
isolation label_file labels links logging mac_address mem_limit mem_reservation
mem_swappiness memswap_limit network_mode networks oom_kill_disable oom_score_adj pid
pids_limit platform ports post_start pre_stop privileged profiles provider pull_policy
read_only restart runtime scale secrets security_opt shm_size stdin_open stop_grace_period
stop_signal storage_opt sysctls tmpfs tty ulimits use_api_socket user userns_mode uts
volumes volumes_from working_dir""".split()


def test_the_compose_table_names_every_compose_service_key() -> None:
    table = DOC.split("## From Compose", 1)[1].split("\n## ", 1)[0]
    missing = [k for k in COMPOSE_SERVICE_KEYS if f"`{k}`" not in table]
    assert not missing, missing
    for field in attrs.fields(model.Member):  # every member key is Compose's, and listed
        assert field.name in COMPOSE_SERVICE_KEYS and f"`{field.name}`" in table, field.name


def test_restart_policies_and_defaults_match_the_model() -> None:
    for policy in model.RESTART_POLICIES:
        assert f'`"{policy}"`' in DOC
    assert f'`"{model.DEFAULT_OWNER_IMAGE}"`' in DOC
    assert f'`"{model.DEFAULT_HELPER_IMAGE}"`' in DOC


def test_the_complete_example_is_valid(tmp_path: Path) -> None:
    example = DOC.split("```toml\n", 1)[1].split("```", 1)[0]
    spec = tmp_path / "stack.toml"
    spec.write_text(example)
    stack = load(spec, env={}).stack
    assert stack.groups["edge"].members["web"].init is True
