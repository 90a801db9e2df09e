"""Sysctls: which namespace holds a name, which names a group may set, value text."""

from __future__ import annotations

import pytest

from stackctl.spec.sysctls import Namespace, classify, name_problem, normalize_value


@pytest.mark.parametrize("name, namespace", [
    ("net.core.somaxconn", Namespace.NET),
    ("net.ipv4.ip_local_port_range", Namespace.NET),
    ("net.ipv4.conf.eth0.rp_filter", Namespace.NET),
    ("kernel.shmmax", Namespace.IPC),
    ("kernel.shmall", Namespace.IPC),
    ("kernel.shmmni", Namespace.IPC),
    ("kernel.shm_rmid_forced", Namespace.IPC),
    ("kernel.msgmax", Namespace.IPC),
    ("kernel.msgmnb", Namespace.IPC),
    ("kernel.msgmni", Namespace.IPC),
    ("kernel.sem", Namespace.IPC),
    ("fs.mqueue.msg_max", Namespace.IPC),
    ("fs.mqueue.queues_max", Namespace.IPC),
    ("kernel.hostname", Namespace.UTS),
    ("vm.swappiness", Namespace.HOST),
    ("kernel.pid_max", Namespace.HOST),
    ("fs.file-max", Namespace.HOST),
    ("kernel.msg_next_id", Namespace.HOST),  # IPC, but the runtime refuses it
])
def test_classify(name: str, namespace: Namespace) -> None:
    assert classify(name) is namespace


@pytest.mark.parametrize("name", ["net.core.somaxconn", "kernel.shmmax", "kernel.sem",
                                  "fs.mqueue.msg_max", "net.ipv6.conf.all.disable_ipv6"])
def test_namespaced_names_are_accepted(name: str) -> None:
    assert name_problem(name) is None


def test_host_wide_names_are_refused_with_the_reason() -> None:
    message, hint = name_problem("vm.swappiness")
    assert message == "'vm.swappiness' is not namespaced: writing it would change the whole host"
    assert "/etc/sysctl.d/" in hint and "net.*" in hint
    assert "(" not in hint and ")" not in hint


@pytest.mark.parametrize("name, fragment", [
    ("net/core/somaxconn", "write it with dots: 'net.core.somaxconn'"),
    ("somaxconn", "dotted form"),
    ("net.core.", "dotted form"),
    ("net.core.somaxconn\n", "dotted form"),
    ("kernel.domainname", "each container keeps its own hostname"),
    ("kernel.sem_next_id", "kernel.sem, kernel.shm_rmid_forced"),
])
def test_bad_names_get_a_fix(name: str, fragment: str) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert fragment in problem[1]


@pytest.mark.parametrize("value", [1024, "1024", " 1024 ", "1024\n"])
def test_integer_forms_compare_equal(value: object) -> None:
    assert normalize_value(value) == "1024"


@pytest.mark.parametrize("value", ["1024 65000", "1024\t65000\n", "1024  \t 65000", "\t1024\t65000\t"])
def test_kernel_multi_value_output_compares_equal(value: str) -> None:
    assert normalize_value(value) == "1024 65000"


def test_negative_and_string_values_are_kept() -> None:
    assert normalize_value(-1) == "-1"
    assert normalize_value("bbr") == "bbr"


@pytest.mark.parametrize("value", [True, 1.5, [1, 2], {"a": 1}, None])
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(TypeError):
        normalize_value(value)
