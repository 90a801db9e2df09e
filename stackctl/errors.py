"""One exception root for everything stackctl reports to an operator.

The CLI catches :class:`StackctlError` and prints its message; anything else is a bug and
keeps its traceback. Every subclass renders a message that names *what* (file and key,
container, address) and *why*, and where it can, *how to fix it*.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import attrs


class StackctlError(Exception):
    """Root of every error stackctl reports without a traceback."""


@attrs.frozen
class Problem:
    """One thing wrong with a spec: where it is, what is wrong, and how to fix it."""

    file: str
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        text = f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class SpecError(StackctlError):
    """A spec is invalid. Carries every problem found, so they are reported at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class EngineError(StackctlError):
    """The Docker engine refused or failed an operation; names the container and cause."""


class EngineUnavailable(EngineError):
    """No Docker engine answered, or its socket refused us."""


class PlanError(StackctlError):
    """A plan cannot be made or used (unreadable plan file, stale plan, bad target)."""


class StalePlanError(PlanError):
    """The engine's state changed after the saved plan was made."""


class ExportError(StackctlError):
    """A stack cannot be exported as asked (e.g. an invalid Kubernetes namespace name)."""


class LockError(StackctlError):
    """Another stackctl process holds this stack's lock."""


class ApplyError(StackctlError):
    """An apply finished with failures; ``failures`` holds the root causes only."""

    def __init__(self, failures: Sequence[tuple[str, str]], skipped: Sequence[str]) -> None:
        self.failures = tuple(failures)
        self.skipped = tuple(skipped)
        lines = [f"{address}: {cause}" for address, cause in self.failures]
        if self.skipped:
            lines.append(
                "not attempted because a dependency failed: " + ", ".join(self.skipped)
            )
        super().__init__("\n".join(lines))
