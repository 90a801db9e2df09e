"""A :class:`KubernetesExport` as deterministic multi-document YAML, with its notes on top.

Same stack, same bytes: objects are built in a fixed order and dumped with PyYAML's pure
Python SafeDumper (the C dumper, where present, must not change the output), keys in the
order built (apiVersion, kind, metadata, spec, as kubectl shows them), no line wrapping,
and nothing that varies from run to run (no time stamp, no absolute path). Comments go
above each document: what an operator must do before applying (the kubelet flag, the
Secrets) and what did not carry over (the warnings), in the file that goes to Git.
"""

from __future__ import annotations

from typing import Any

import yaml

from stackctl import __version__
from stackctl.export.kube_sysctls import KUBERNETES_VERSION
from stackctl.export.kubernetes import KubernetesExport


class _Dumper(yaml.SafeDumper):
    """Indents block sequences under their key, as Kubernetes documentation writes them,
    and writes no anchors."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True  # objects share label dicts; YAML anchors would only confuse readers


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML writes NEL, LS and PS raw in plain and single-quoted scalars, where a reader
    # folds them as line breaks (measured: '\x85a' read back as ' a'); a double-quoted
    # scalar escapes them (\N, \L, \P).
    if any(ch in text for ch in "\x85\u2028\u2029"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')
    return dumper.represent_str(text)


_Dumper.add_representer(str, _str)


def _dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 16)


def _comment(lines: list[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def header_lines(export: KubernetesExport) -> list[str]:
    """The notes at the top of the file (also what the CLI prints on stderr)."""
    lines = [f"Kubernetes manifests of stackctl stack {export.stack!r}, made by "
             f"`stackctl export kubernetes` (stackctl {__version__}, Kubernetes "
             f"{KUBERNETES_VERSION} API). Edit the spec and export again, not this file.", ""]
    lines += sysctl_lines(export) + [""]
    if export.secrets:
        lines.append("Secrets to create before applying (env_file values are not written "
                     "here):")
        lines += [f"  {c}" for c in export.secret_commands()]
        lines.append("")
    if export.warnings:
        lines.append(f"Warnings ({len(export.warnings)}): what does not carry over as it is")
        lines += [f"  {w}" for w in export.warnings]
        lines.append("")
    return lines[:-1] if lines and lines[-1] == "" else lines


def sysctl_lines(export: KubernetesExport) -> list[str]:
    if not export.sysctls:
        return ["Sysctls: none; the kubelet needs no --allowed-unsafe-sysctls."]
    flag = export.kubelet_flag
    if flag is None:
        lines = ["Sysctls: all in the kubelet's safe set; no --allowed-unsafe-sysctls needed."]
    else:
        lines = ["The kubelets that run these pods need this flag (or allowedUnsafeSysctls "
                 "in their configuration), or they refuse the pods (SysctlForbidden):",
                 f"  {flag}"]
    lines += [f"  {c}" for c in export.sysctl_caveats]
    return lines


def render(export: KubernetesExport) -> str:
    """The whole file: header comments, then one ``---`` document per object."""
    parts = [_comment(header_lines(export))]
    for doc in export.documents:
        parts.append("---\n" + _comment(list(doc.comments)) + _dump(doc.obj))
    return "".join(parts)
