"""The package type-checks (mypy, configured in pyproject.toml). Types are part of the
design here: attrs models, the Reader protocol of the engine adapter, the applier's
EngineActions protocol. This keeps them honest."""

from __future__ import annotations

import subprocess
import sys

from support import ROOT


def test_package_type_checks() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
