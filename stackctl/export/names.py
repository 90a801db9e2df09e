"""Kubernetes object names from stackctl names, which may hold '_' (and volumes '.', capitals).

Kubernetes names most objects with DNS-1123 labels (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at
most 63 characters) and Services with DNS-1035 labels (the same, starting with a letter).
A name is converted only when it has to be; every conversion is reported, because a
group renamed in Kubernetes answers under its new name there (``api_v2`` -> ``api-v2``).
Two names that convert to the same one get a short suffix from their own hash, so the
result depends on the name alone, not on which other names the stack has.
"""

from __future__ import annotations

import hashlib
import re

DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1035_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE_RE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
QUALIFIED_NAME_RE = re.compile(
    r"(?:(?P<prefix>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/)?"
    r"(?P<name>[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)")
MAX_LABEL = 63


def _suffix(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:5]


def dns_label(text: str, letter_first: bool = False, limit: int = MAX_LABEL) -> str:
    """``text`` as a DNS-1123 label (DNS-1035 with ``letter_first``): lower case, every run
    of other characters a '-', trimmed; too long or empty gets a hash suffix."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if letter_first and not name[:1].isalpha():
        name = ("x-" + name).rstrip("-")
    if not name or len(name) > limit:
        keep = name[: limit - 6].rstrip("-")
        name = f"{keep}-{_suffix(text)}" if keep else f"x{_suffix(text)}"
    return name


def label_value(text: str) -> str:
    """``text`` as a label value (at most 63 of alphanumerics, '-', '_', '.')."""
    if len(text) <= MAX_LABEL and LABEL_VALUE_RE.fullmatch(text):
        return text
    return dns_label(text)


def is_qualified_name(key: str) -> bool:
    """Whether ``key`` may be a label or annotation key."""
    m = QUALIFIED_NAME_RE.fullmatch(key)
    if not m:
        return False
    prefix = m.group("prefix") or ""
    return len(m.group("name")) <= MAX_LABEL and len(prefix) <= 253


class Namer:
    """Names within one scope (one kind of object, or the containers of one pod).

    ``name(original)`` returns the same Kubernetes name for the same original every time;
    a conversion is recorded in ``renamed`` (original -> new) for the export's warnings.
    """

    def __init__(self, letter_first: bool = False, limit: int = MAX_LABEL) -> None:
        self.letter_first = letter_first
        self.limit = limit
        self._by_original: dict[str, str] = {}
        self._taken: dict[str, str] = {}
        self.renamed: dict[str, str] = {}

    def _valid(self, text: str) -> bool:
        pattern = DNS_1035_RE if self.letter_first else DNS_LABEL_RE
        return len(text) <= self.limit and bool(pattern.fullmatch(text))

    def prepare(self, originals: "list[str]") -> None:
        """Name every original of the scope up front, the ones valid as they are first, so
        a name that needs no conversion keeps it even if a converted one would clash."""
        for original in sorted(originals, key=lambda o: (not self._valid(o), o)):
            self.name(original)

    def name(self, original: str) -> str:
        if original in self._by_original:
            return self._by_original[original]
        name = original if self._valid(original) else dns_label(
            original, self.letter_first, self.limit)
        if name in self._taken and self._taken[name] != original:
            name = f"{name[: self.limit - 6].rstrip('-')}-{_suffix(original)}"
        self._taken[name] = original
        self._by_original[original] = name
        if name != original:
            self.renamed[original] = name
        return name
