"""Where the agent's stacks come from: the PATHs (stacks, or repos of stacks), what their
files look like on disk now, and, with ``--git``, the checkout they live in.

Spec changes are found by polling file metadata (name, size, mtime) once a second: no
inotify dependency, and a few ``stat`` calls per stack cost far less than the engine
requests of one plan. A repo of stacks is listed again on each poll, so a stack directory
added or removed in a commit is seen without a restart.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional

from stackctl.spec.repo import is_repo, repo_stacks

Fingerprint = tuple[tuple[str, int, int], ...]


def discover(paths: tuple[str, ...]) -> list[Path]:
    """Every stack the PATHs name now. A directory with no ``*.toml`` of its own is a repo
    (possibly empty for the moment); anything else is one stack."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() and (is_repo(p) or not any(p.glob("*.toml"))):
            found.extend(repo_stacks(p))
        else:
            found.append(p)
    return list(dict.fromkeys(p.resolve() if p.exists() else p for p in found))


def fingerprint(stack: Path) -> Fingerprint:
    """What the stack's files look like: a file stack's file, a directory stack's files
    (all of them, so an env file beside the specs counts too). Empty when it is gone."""
    entries: list[tuple[str, int, int]] = []
    try:
        if stack.is_dir():
            with os.scandir(stack) as it:
                for e in it:
                    if e.is_file() and not e.name.startswith("."):
                        st = e.stat()
                        entries.append((e.name, st.st_size, st.st_mtime_ns))
        elif stack.is_file():
            st = stack.stat()
            entries.append((stack.name, st.st_size, st.st_mtime_ns))
    except OSError:
        pass
    return tuple(sorted(entries))


class GitError(Exception):
    pass


class Checkout:
    """A git checkout the agent keeps fast-forwarded to its upstream. It never resets,
    merges or rebases: a checkout that diverged from upstream (or has local changes in
    the way) is reported and left as it is."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def find(path: Path) -> "Optional[Checkout]":
        probe = path if path.is_dir() else path.parent
        try:
            root = _git(probe, "rev-parse", "--show-toplevel")
        except GitError:
            return None
        return Checkout(Path(root))

    def head(self) -> str:
        return _git(self.root, "rev-parse", "HEAD")

    def sync(self) -> tuple[str, str, str]:
        """Fetch, then fast-forward when upstream is strictly ahead.

        Returns (before, after, note): the commits before and after, and what happened
        ("" when already current). Raises GitError when fetching fails, when there is no
        upstream, or when the checkout diverged (nothing is changed then)."""
        before = self.head()
        _git(self.root, "fetch", "--quiet")
        counts = _git(self.root, "rev-list", "--left-right", "--count", "HEAD...@{upstream}")
        ahead, behind = (int(x) for x in counts.split())
        if behind == 0:
            return before, before, ""
        if ahead:
            raise GitError(f"{self.root}: the checkout has diverged from its upstream ({ahead} "
                           f"local commit(s), {behind} upstream); not fast-forwarded: a person "
                           "must reconcile it")
        _git(self.root, "merge", "--ff-only", "--quiet", "@{upstream}")
        return before, self.head(), f"fast-forwarded {behind} commit(s)"


def _git(cwd: Path, *args: str) -> str:
    try:
        run = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {args[0]} in {cwd}: {exc}") from None
    if run.returncode != 0:
        raise GitError(f"git {args[0]} in {cwd} failed: "
                       f"{(run.stderr.strip().splitlines() or ['exit ' + str(run.returncode)])[-1]}")
    return run.stdout.strip()
