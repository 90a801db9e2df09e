"""Compose's variable references, kept as stackctl's: never expanded by convert.

stackctl substitutes ``${VAR}`` and ``${VAR:-default}`` itself when it loads a spec, from
the environment of ``plan`` and ``apply``, as Compose did at ``up``; so convert rewrites
Compose's other spellings into those two and refuses the ones stackctl cannot express.
"""

from __future__ import annotations

import re
from typing import Any

# ------------------------------------------------------------------------- variables
COMPOSE_VAR = re.compile(r"\$(?:(\$)|\{([^{}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])(.*))?", re.S)


class VariableError(ValueError):
    """A Compose variable form that stackctl's interpolation cannot express."""


def keep_variables(text: str) -> str:
    """Compose's interpolation syntax rewritten to stackctl's, never expanded.

    ``${VAR}``, ``${VAR:-default}`` and ``$$`` are the same in both. ``$VAR`` becomes
    ``${VAR}``; ``${VAR-default}`` becomes ``${VAR:-default}`` (stackctl also uses the
    default for an empty value); ``${VAR:?message}`` becomes ``${VAR}`` (stackctl refuses
    an unset variable by itself). ``${VAR:+alternative}`` has no stackctl form: an error.
    """
    if "$" not in text:
        return text

    def replace(m: re.Match[str]) -> str:
        if m.group(1):
            return "$$"
        if m.group(3):
            return "${" + m.group(3) + "}"
        inner = _BRACED.fullmatch(m.group(2) or "")
        if not inner:
            raise VariableError(f"cannot read the variable reference {m.group(0)!r}")
        name, _colon, op, rest = inner.groups()
        if op is None:
            return "${" + name + "}"
        if op == "-":
            if "$" in rest:
                raise VariableError(f"{m.group(0)!r} has a variable in its default, which "
                                "stackctl's ${VAR:-default} cannot nest")
            return "${" + name + ":-" + rest + "}"
        if op == "?":
            return "${" + name + "}"
        raise VariableError(f"{m.group(0)!r} uses ${{VAR:+...}}, which stackctl's "
                        "interpolation does not have")

    return COMPOSE_VAR.sub(replace, text)


def has_variable(v: Any) -> bool:
    return isinstance(v, str) and bool(COMPOSE_VAR.search(v)) and "$$" != v.strip()
