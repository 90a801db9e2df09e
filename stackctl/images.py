"""Image references and identities, and which images to pull when. Pure: no engine.

A tag is a name that can move: ``app:1.4`` rebuilt or pulled again names another image.
The planner compares image *ids*, not references, so a member still running the image
``app:1.4`` used to name is replaced ("image app:1.4 now names 3f2a9c1e (running
9b81d0aa)"). The ids come from one image listing per observe; the references there are
Docker's short ("familiar") spellings, so both sides are brought to one canonical form
here, as the engine's own reference parser does.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from stackctl.resources import Resource, Role

_ID = re.compile(r"sha256:[0-9a-f]{64}")


def canonical(reference: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest``; a digest reference keeps only
    its digest (the engine resolves ``name:tag@digest`` by the digest)."""
    if _ID.fullmatch(reference):
        return reference
    name, _, digest = reference.partition("@")
    tag = ""
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        domain, path = "docker.io", name
    else:
        domain, path = first, rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    if digest:
        return f"{domain}/{path}@{digest}"
    return f"{domain}/{path}:{tag or 'latest'}"


def familiar(reference: str) -> str:
    """The short spelling Docker lists and filters by: ``busybox:latest``."""
    full = canonical(reference)
    for prefix in ("docker.io/library/", "docker.io/"):
        if full.startswith(prefix):
            return full[len(prefix):]
    return full


def resolve(listing: Iterable[Mapping[str, Any]], references: Iterable[str]) -> dict[str, str]:
    """reference -> image id, from an image listing (``GET /images/json``); references
    that name no image listed are left out."""
    ids: dict[str, str] = {}
    for image in listing:
        for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
            if "<none>" not in ref:
                ids[canonical(ref)] = image["Id"]
        ids[image["Id"]] = image["Id"]
    out = {}
    for ref in references:
        found = ids.get(canonical(ref))
        if found:
            out[ref] = found
    return out


def short(image_id: str) -> str:
    """``sha256:3f2a9c1e...`` -> ``3f2a9c1e``, as the plan's reasons name images."""
    return image_id.split(":", 1)[-1][:8]


def pull_policies(resources: Iterable[Resource]) -> dict[str, str]:
    """image -> how apply may pull it: ``always`` when a member asks for it, else
    ``missing`` when anything may pull it (owners and helpers always may), else ``never``."""
    rank = {"never": 0, "missing": 1, "always": 2}
    out: dict[str, str] = {}
    for r in resources:
        policy = str(r.extra.get("pull_policy", "missing")) if r.role is Role.MEMBER else "missing"
        for image in r.images:
            if image not in out or rank[policy] > rank[out[image]]:
                out[image] = policy
    return out


def by_policy(resources: Iterable[Resource], policy: str) -> list[str]:
    """The images whose pull policy (see :func:`pull_policies`) is ``policy``."""
    return [image for image, p in pull_policies(resources).items() if p == policy]
