"""Property: any valid spec exports to manifests the Kubernetes 1.37 schemas accept
(strict) and that carry the spec, with the same bytes every time.

The specs come from the generator of the no-perpetual-diff property test
(tests/unit/test_property_no_perpetual_diff.py): names, ports, namespaced sysctls in odd
spellings, environments and commands of arbitrary text (``$``, ``$(``, control
characters), volumes, restart policies and depends_on DAGs.
"""

from __future__ import annotations

import random
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kube_check import assert_carries, check_semantics, read_yaml, validate
from support import ROOT
from stackctl.export.kube_yaml import render
from stackctl.export.kubernetes import export_kubernetes

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_property_no_perpetual_diff import _load, emit, specs  # noqa: E402


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=specs(), seed=st.integers(0, 2**32))
def test_any_valid_spec_exports_to_valid_manifests_that_carry_it(doc: dict[str, Any],
                                                                  seed: int) -> None:
    stack = _load(emit(doc, random.Random(seed)))
    text = render(export_kubernetes(stack, namespace="ns"))
    assert text == render(export_kubernetes(stack, namespace="ns"))
    objects = read_yaml(text)
    for obj in objects:
        validate(obj)
        check_semantics(obj)
    assert_carries(stack, objects)
