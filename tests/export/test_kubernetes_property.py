"""Property: any valid spec exports to manifests the Kubernetes 1.37 schemas accept
(strict) and that carry the spec, with the same bytes every time.

The specs come from the generator of the no-perpetual-diff property test
(tests/unit/test_property_no_perpetual_diff.py): names, ports, namespaced sysctls in odd
spellings, environments and commands of arbitrary text (``$``, ``$(``, control
characters), volumes, restart policies and depends_on DAGs; extended here with networks,
the group's namespace keys and the member keys the export maps (limits, tmpfs, user,
capabilities, health checks of arbitrary text and timings).
"""

from __future__ import annotations

import random
import sys
from typing import Any

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from kube_check import assert_carries, check_semantics, read_yaml, validate
from support import ROOT
from stackctl.errors import SpecError
from stackctl.export.kube_yaml import render
from stackctl.export.kubernetes import export_kubernetes

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_property_no_perpetual_diff import TEXT, Inline, _load, emit, specs  # noqa: E402


DURATION = st.sampled_from(["1s", "5s", "1m30s", "500ms", "0s", "2m"])


@st.composite
def extended_specs(draw: Any) -> dict[str, Any]:
    """specs(), plus the group and member keys of the Kubernetes mapping, in valid forms."""
    doc = draw(specs())
    nets = draw(st.dictionaries(st.sampled_from(["back", "front", "db_net"]),
                                st.fixed_dictionaries({"internal": st.booleans()}), max_size=2))
    if nets:
        doc["networks"] = {k: Inline(v) for k, v in nets.items()}
    for table in doc["groups"].values():
        if draw(st.booleans()):
            table["networks"] = draw(st.lists(st.sampled_from(["default", *nets]), unique=True))
        if draw(st.booleans()):
            table["hostname"] = draw(st.sampled_from(["edge", "db.example.com", "x1"]))
        if draw(st.booleans()):
            table["dns"] = draw(st.lists(st.sampled_from(["1.1.1.1", "9.9.9.9", "8.8.8.8",
                                                          "10.0.0.2"]), unique=True, max_size=4))
        if draw(st.booleans()):
            table["dns_opt"] = draw(st.lists(st.sampled_from(["ndots:2", "edns0", "timeout:1"]),
                                             unique=True))
        if draw(st.booleans()):
            table["extra_hosts"] = draw(st.lists(st.sampled_from(
                ["a.local:10.0.0.5", "b.local:10.0.0.5", "c.local:[2001:db8::1]",
                 "gw.local:host-gateway"]), unique=True))
        if draw(st.booleans()):
            table["shm_size"] = draw(st.sampled_from(["64m", "1g", "1000000", 268435456]))
        for member in table.get("members", {}).values():
            if draw(st.booleans()):
                member["mem_limit"] = draw(st.sampled_from(["256m", "1g", "1536k", 1048576, "0"]))
            if draw(st.booleans()):
                member["cpus"] = draw(st.sampled_from([0.25, 1, 1.5, 0.001, 2.0]))
            if draw(st.booleans()):
                member["tmpfs"] = draw(st.lists(st.sampled_from(
                    ["/run", "/tmp:size=64m", "/cache:size=1g,mode=1777"]), unique=True))
            if draw(st.booleans()):
                member["user"] = draw(st.sampled_from(["1000", "1000:1000", "nobody", "app:50"]))
            if draw(st.booleans()):
                member["cap_add"] = draw(st.lists(st.sampled_from(["NET_ADMIN", "CAP_CHOWN"]),
                                                  unique=True))
            if draw(st.booleans()):
                hc: dict[str, Any] = {}
                hc["test"] = draw(st.one_of(
                    st.lists(TEXT, min_size=1, max_size=3).map(lambda a: ["CMD", *a]),
                    TEXT.map(lambda t: ["CMD-SHELL", t]), TEXT, st.just(["NONE"])))
                for key in ("interval", "timeout", "start_period", "start_interval"):
                    if draw(st.booleans()):
                        hc[key] = draw(DURATION)
                if draw(st.booleans()):
                    hc["retries"] = draw(st.integers(1, 10))
                member["healthcheck"] = Inline(hc)
    return doc


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=extended_specs(), seed=st.integers(0, 2**32))
def test_any_valid_spec_exports_to_valid_manifests_that_carry_it(doc: dict[str, Any],
                                                                  seed: int) -> None:
    try:
        stack = _load(emit(doc, random.Random(seed)))
    except SpecError:
        # The property is about valid specs. Validation of the keys added above is being
        # tightened in parallel; a form it refuses is out of scope here (and if it refused
        # most, Hypothesis's filter_too_much health check fails this test).
        reject()
    text = render(export_kubernetes(stack, namespace="ns"))
    assert text == render(export_kubernetes(stack, namespace="ns"))
    objects = read_yaml(text)
    for obj in objects:
        validate(obj)
        check_semantics(obj)
    assert_carries(stack, objects)
