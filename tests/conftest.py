"""Shared test set-up: a real Docker engine for integration tests, started here if needed.

Integration tests talk to a real engine; none is mocked. If no engine answers, the set-up
starts one with ``scripts/engine-up`` and builds the local images with
``scripts/build-images`` (both idempotent). Under ``CI=true`` a missing engine FAILS the
run; elsewhere the engine tests are skipped with the reason, and unit tests still run.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Iterator

import pytest

from support import IN_CI, ROOT, free_port

_engine_state: dict[str, object] = {}


def _ping() -> bool:
    try:
        import docker

        docker.from_env(timeout=10).ping()
        return True
    except Exception:
        return False


def _ensure_engine() -> str:
    """Return "" when the engine and images are ready, else why not."""
    if "why" in _engine_state:
        return str(_engine_state["why"])
    why = ""
    if not _ping():
        if os.geteuid() == 0:
            run = subprocess.run([str(ROOT / "scripts/engine-up")], capture_output=True, text=True)
            if run.returncode != 0:
                why = f"scripts/engine-up failed:\n{run.stdout}{run.stderr}"
        else:
            why = "no Docker engine answers, and starting one needs root"
    if not why and not _ping():
        why = "no Docker engine answers after scripts/engine-up"
    if not why:
        run = subprocess.run([str(ROOT / "scripts/build-images")], capture_output=True, text=True)
        if run.returncode != 0:
            why = f"scripts/build-images failed:\n{run.stdout}{run.stderr}"
    _engine_state["why"] = why
    return why


@pytest.fixture(scope="session")
def docker_client():
    """A docker-py client on a running engine with the local test images built."""
    why = _ensure_engine()
    if why:
        if IN_CI:
            pytest.fail(f"CI=true and no Docker engine: {why}", pytrace=False)
        pytest.skip(f"no Docker engine: {why}")
    import docker

    return docker.from_env(timeout=120)


@pytest.fixture
def stack_name(docker_client) -> Iterator[str]:
    """A fresh stack name; every container, network and volume labelled with it is
    removed afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    import docker.errors

    label = {"label": f"stackctl.stack={name}"}
    # Each may have been removed meanwhile (listed while its removal finished).
    for c in docker_client.containers.list(all=True, filters=label):
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
    for n in docker_client.networks.list(filters=label):
        try:
            n.remove()
        except docker.errors.NotFound:
            pass
    for v in docker_client.volumes.list(filters=label):
        try:
            v.remove(force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def port() -> int:
    return free_port()


# ----------------------------------------------------------------- fault counting
_fault_results: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "fault" in report.keywords and (report.when == "call" or report.outcome != "passed"):
        if report.when == "call" or report.nodeid not in _fault_results:
            _fault_results[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if not _fault_results:
        return
    survived = sum(1 for o in _fault_results.values() if o == "passed")
    terminalreporter.write_line(
        f"fault suite: {len(_fault_results)} faults injected against the real engine, "
        f"{survived} survived with nothing lost")
