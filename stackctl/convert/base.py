"""What every step of the Compose mapping shares: reporting notes and errors with the
file and key path they concern, reading values (variables kept, typed values checked),
and rewriting host paths relative to where the spec will live."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Optional

from stackctl.convert.compose_files import ComposeProject
from stackctl.convert.toml_out import Table
from stackctl.convert.variables import VariableError, has_variable, keep_variables
from stackctl.errors import Problem, StackctlError


class ConvertError(StackctlError):
    """The project cannot be converted faithfully; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def suggested_name(name: str) -> str:
    guess = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:40].rstrip("-_")
    return guess


_TRUE = ("true", "yes", "y", "on")
_FALSE = ("false", "no", "n", "off")


class Base:
    """The converter's state and the helpers its mapping steps (mixins) share."""

    names: dict[str, str]       # Compose service -> stackctl group/member name
    net_names: dict[str, str]   # Compose network -> stackctl network name
    vol_names: dict[str, str]   # Compose volume -> stackctl volume name

    def __init__(self, project: ComposeProject, base_dir: Path) -> None:
        self.p = project
        self.base_dir = base_dir
        self.errors: list[Problem] = []
        self.notes: list[Problem] = []
        self.service_notes: dict[str, list[str]] = {}
        self.head_notes: list[str] = []
        self.extra_tmpfs: dict[str, list[str]] = {}  # long-syntax tmpfs volumes
        self.member_tables: dict[str, Table] = {}
        self.joins: dict[str, str] = {}  # service -> the service whose network it joins

    # ------------------------------------------------------------- reporting
    def error(self, service: Optional[str], key: str, path: str, message: str,
              hint: str = "") -> None:
        self.errors.append(Problem(self.p.file_of(service, key), path, message, hint))

    def note(self, service: Optional[str], key: str, path: str, message: str,
             hint: str = "") -> None:
        """Something not converted: on stderr, and as a comment in the output."""
        self.notes.append(Problem(self.p.file_of(service, key), path, message, hint))
        text = f"{path}: {message}" + (f" ({hint})" if hint else "")
        if service is None:
            self.head_notes.append(text)
        else:
            self.service_notes.setdefault(service, []).append(text)

    def text(self, v: Any, service: Optional[str], key: str, path: str) -> str:
        """A string value with Compose's variables kept for stackctl."""
        if isinstance(v, bool):
            return "true" if v else "false"
        s = str(v)
        try:
            return keep_variables(s)
        except VariableError as exc:
            self.error(service, key, path, str(exc), "write the value, or a ${VAR} or "
                       "${VAR:-default} reference")
            return s

    def typed(self, v: Any, kind: type, service: Optional[str], key: str, path: str) -> Any:
        """A value stackctl reads as a number or boolean: no variable can stand there."""
        if has_variable(v):
            self.error(service, key, path, f"{v!r} is a variable, but stackctl reads {key} "
                       f"as a {'boolean' if kind is bool else 'number'}, not text",
                       "write the value itself")
            return None
        if kind is bool:
            if isinstance(v, bool):
                return v
            # YAML 1.2 reads `yes` as text, and Compose still takes it as a boolean
            # (`docker compose config` accepts `read_only: yes`).
            if isinstance(v, str) and v.lower() in _TRUE + _FALSE:
                return v.lower() in _TRUE
        elif kind is int:
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v.strip()):
                return int(v)
        elif kind is float:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            if isinstance(v, str):
                try:
                    return float(v)
                except ValueError:
                    pass
        self.error(service, key, path, f"expected a {kind.__name__}, got {v!r}",
                   "`docker compose config` rejects it too")
        return None

    # ---------------------------------------------------------------- paths
    def rebase(self, path_text: str) -> str:
        """A host path relative to the Compose project, made relative to the output."""
        if path_text.startswith("~"):
            return "${HOME}" + path_text[1:]
        if path_text.startswith(("/", "$")):
            return path_text
        absolute = os.path.normpath(os.path.join(self.p.project_dir, path_text))
        rel = os.path.relpath(absolute, self.base_dir)
        if rel == ".":
            return "./"
        return rel if rel.startswith("../") or rel == ".." else "./" + rel

    # ---------------------------------------------------------------- key=value
    def _kv(self, v: Any, service: Optional[str], key: str, path: str,
            missing: Optional[Callable[[str], str]] = None) -> dict[str, str]:
        """A list of KEY=VALUE (or KEY) or a mapping -> an ordered mapping of text.

        ``missing`` gives the value of a KEY without one (labels: empty; environment:
        the variable of the same name).
        """
        out: dict[str, str] = {}
        if isinstance(v, dict):
            for k, x in v.items():
                if x is None:
                    out[str(k)] = missing(str(k)) if missing else ""
                else:
                    out[str(k)] = self.text(x, service, key, f"{path}.{k}")
        elif isinstance(v, list):
            for i, item in enumerate(v):
                k, eq, x = str(item).partition("=")
                out[k] = (self.text(x, service, key, f"{path}[{i}]") if eq else
                          (missing(k) if missing else ""))
        elif v is not None:
            self.error(service, key, path, "expected a list or a mapping")
        return out

    def _strings(self, v: Any, service: str, key: str, path: str) -> list[str]:
        if v is None:
            return []
        if isinstance(v, (str, int, float)):
            v = [v]
        if not isinstance(v, list):
            self.error(service, key, path, "expected a string or a list of strings")
            return []
        return [self.text(x, service, key, f"{path}[{i}]") for i, x in enumerate(v)]
