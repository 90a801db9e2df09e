"""Which stacks a PATH names: one stack, or a repo of stacks (as a GitOps repo holds them).

A PATH is a stack when it is a file or a directory holding ``*.toml`` files; it is a
*repo of stacks* when it holds none itself but some of its immediate subdirectories do
(``specs/hello/``, ``specs/shop/``). ``stackctl validate`` and ``stackctl watch`` read both.
Only the layout is decided here; each stack is loaded and validated on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

from stackctl.errors import Problem, SpecError

if TYPE_CHECKING:
    from stackctl.spec.load import LoadedSpec


def _has_toml(d: Path) -> bool:
    return any(f.is_file() and not f.name.startswith(".") for f in d.glob("*.toml"))


def is_repo(path: Union[str, Path]) -> bool:
    """True when ``path`` is a directory of stacks rather than one stack."""
    p = Path(path)
    return p.is_dir() and not _has_toml(p) and any(
        d.is_dir() and not d.name.startswith(".") and _has_toml(d) for d in p.iterdir())


def stack_paths(path: Union[str, Path]) -> list[Path]:
    """The stacks at ``path``: ``[path]`` for a stack, its stack subdirectories for a repo.

    A path that is neither is the loader's to report (no such file, no ``*.toml``), so
    it comes back as one stack and fails there with the loader's message.
    """
    p = Path(path)
    if is_repo(p):
        return sorted(d for d in p.iterdir()
                      if d.is_dir() and not d.name.startswith(".") and _has_toml(d))
    return [p]


def repo_stacks(path: Union[str, Path]) -> list[Path]:
    """The stack subdirectories of a repo, possibly none (every stack was removed)."""
    p = Path(path)
    if not p.is_dir():
        raise SpecError([Problem(str(p), "", "no such directory",
                                 "pass a stack or a directory of stacks")])
    return sorted(d for d in p.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and _has_toml(d))


def load_all(path: Union[str, Path]) -> "list[tuple[Path, Union[LoadedSpec, SpecError]]]":
    """Every stack at ``path``, loaded, or the error that stopped it. Two stacks of one repo
    declaring the same ``[stack] name`` are both errors: they would manage the same
    containers."""
    from stackctl.spec.load import load

    results: list[tuple[Path, Union[LoadedSpec, SpecError]]] = []
    for p in stack_paths(path):
        try:
            results.append((p, load(p)))
        except SpecError as exc:
            results.append((p, exc))
    first: dict[str, Path] = {}
    for i, (p, r) in enumerate(results):
        if isinstance(r, SpecError):
            continue
        name = r.stack.name
        if name in first:
            results[i] = (p, SpecError([Problem(
                r.files[0], "stack.name", f"stack {name!r} is also declared by {first[name]}",
                "give each stack of a repo its own name")]))
        else:
            first[name] = p
    return results
