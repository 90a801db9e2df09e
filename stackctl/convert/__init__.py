"""``stackctl convert``: a Compose project in, a stackctl spec out. No engine involved.

:func:`convert_files` reads and merges the Compose files (:mod:`.compose_files`), maps
them onto the spec model (:mod:`.compose`), writes TOML (:mod:`.toml_out`) and then loads
that TOML with stackctl's own validator, so what it returns is a spec ``stackctl
validate`` accepts, or an error: never a file that fails later. The CLI prints; this
package only returns text, notes and errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping, Optional

from stackctl.convert.compose import Conversion, ConvertError, convert
from stackctl.convert.compose_files import ComposeReadError, read_project
from stackctl.errors import Problem, SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Conversion", "ConvertError", "convert_files", "output_file", "write_output"]

SPEC_FILE = "stack.toml"


def output_file(output: Optional[str], cwd: Path) -> Path:
    """Where the spec goes: ``-o DIR`` -> DIR/stack.toml, ``-o FILE.toml`` -> that file;
    printed to stdout it is taken to live in the current directory (``> stack.toml``)."""
    if output is None:
        return cwd / SPEC_FILE
    path = Path(output)
    return path if path.suffix == ".toml" else path / SPEC_FILE


def convert_files(files: list[str], spec_file: Path, stack: Optional[str] = None,
                  env: Optional[Mapping[str, str]] = None) -> Conversion:
    """Compose files -> a validated spec meant to be written at ``spec_file``.

    Raises :class:`ConvertError` (a :class:`~stackctl.errors.StackctlError`) listing
    every problem when the project cannot be converted faithfully.
    """
    try:
        project = read_project(files)
    except ComposeReadError as exc:
        raise ConvertError(exc.problems) from None
    conversion = convert(project, spec_file.resolve().parent, stack, env)
    _check(conversion, spec_file)
    return conversion


def _check(conversion: Conversion, spec_file: Path) -> None:
    """Load the output as ``stackctl validate`` would; any problem is the converter's.

    Variables are left unset here, so the result does not depend on this shell:
    ``${VAR:-default}`` is checked with its default, and a value that needs a variable
    set is stackctl's to check when the spec is loaded for real.
    """
    from stackctl.spec.load import validate_documents

    try:
        doc = tomllib.loads(conversion.text)
    except tomllib.TOMLDecodeError as exc:  # a bug in toml_out, never the input's fault
        raise AssertionError(f"convert wrote invalid TOML: {exc}\n{conversion.text}") from exc
    try:
        validate_documents([(str(spec_file), doc)], env={}, source=str(spec_file))
    except SpecError as exc:
        problems = [p for p in exc.problems
                    if not (p.message.startswith("environment variable ")
                            and p.message.endswith(" is not set"))]
        if problems:
            raise ConvertError([Problem(p.file, p.path, "the converted spec would not "
                                        "validate: " + p.message, p.hint)
                                for p in problems]) from None


def write_output(conversion: Conversion, spec_file: Path) -> None:
    """Write the spec; refuse to overwrite a spec, or to join one already in a directory
    (its *.toml files would merge with the new one into a different stack)."""
    directory = spec_file.parent
    if spec_file.exists():
        raise ConvertError([Problem(str(spec_file), "", "the file exists already",
                                    "remove it, or write somewhere else with -o")])
    if directory.is_dir():
        others = sorted(p.name for p in directory.glob("*.toml"))
        if others and spec_file.name == SPEC_FILE and spec_file.suffix == ".toml":
            raise ConvertError([Problem(str(directory), "", "the directory holds spec files "
                                        f"already ({', '.join(others)}): they would merge "
                                        "with the converted spec", "choose a new directory")])
    try:
        directory.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(conversion.text, encoding="utf-8")
    except OSError as exc:
        raise ConvertError([Problem(str(spec_file), "", f"cannot write: {exc.strerror}",
                                    "check the path and its permissions")]) from None
