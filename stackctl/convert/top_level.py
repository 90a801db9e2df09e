"""Compose's top-level ``networks`` and ``volumes`` -> ``[networks.NAME]`` and
``[volumes.NAME]``, and the renaming of keys that are not stackctl names."""

from __future__ import annotations

from typing import Any

from stackctl.convert.base import Base, suggested_name
from stackctl.spec.rules import NAME_RE, NAME_RULE


class TopLevel(Base):
    def _key_name(self, kind: str, name: str) -> str:
        if NAME_RE.fullmatch(name):
            return name
        new = suggested_name(name)
        if not NAME_RE.fullmatch(new):
            self.error(None, kind, f"{kind}.{name}", f"cannot make a stackctl name of "
                       f"{name!r}", NAME_RULE)
        else:
            self.note(None, kind, f"{kind}.{name}", f"renamed to {new!r}", NAME_RULE)
        return new

    # ---------------------------------------------------------------- networks
    def _networks(self, nets: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        out: dict[str, dict[str, Any]] = {}
        names: dict[str, str] = {"default": "default"}
        if not isinstance(nets, dict):
            self.error(None, "networks", "networks", "expected a mapping of networks")
            return out, names
        for name, spec in nets.items():
            path = f"networks.{name}"
            spec = spec or {}
            if name == "default":
                # `docker compose config` writes name: PROJECT_default on every project
                settings = {k: x for k, x in spec.items() if not k.startswith("x-")}
                if settings and not (list(settings) == ["name"] and
                                     str(settings["name"]).endswith("_default")):
                    self.note(None, "networks", path, "not converted: stackctl's default "
                              "network is always the stack's own bridge",
                              "declare another network and list it in the groups' networks")
                continue
            new = self._key_name("networks", name)
            names[name] = new
            table: dict[str, Any] = {}
            for key, v in spec.items():
                kpath = f"{path}.{key}"
                if key.startswith("x-"):
                    continue
                if key == "internal":
                    table["internal"] = self.typed(v, bool, None, "networks", kpath)
                elif key == "external":
                    if isinstance(v, dict):  # the legacy form external: {name: ...}
                        table["external"] = True
                        if "name" in v:
                            table["name"] = self.text(v["name"], None, "networks", kpath)
                    else:
                        table["external"] = self.typed(v, bool, None, "networks", kpath)
                elif key == "name":
                    table["name"] = self.text(v, None, "networks", kpath)
                elif key == "driver" and v == "bridge":
                    continue
                elif key == "ipam" and isinstance(v, dict):
                    configs = v.get("config") or []
                    for i, c in enumerate(configs):
                        cpath = f"{kpath}.config[{i}]"
                        if i == 0 and isinstance(c, dict) and "subnet" in c:
                            table["subnet"] = self.text(c["subnet"], None, "networks",
                                                        cpath + ".subnet")
                        extra = [k for k in (c if isinstance(c, dict) else {}) if
                                 k != "subnet" or i > 0]
                        if extra:
                            self.note(None, "networks", cpath, "not converted: "
                                      + ", ".join(extra), "stackctl sets one subnet per "
                                      "network; Docker picks the gateway and range")
                    for k in v:
                        if k != "config":
                            self.note(None, "networks", f"{kpath}.{k}",
                                      "not converted: not supported by stackctl")
                else:
                    self.note(None, "networks", kpath, "not converted: stackctl networks "
                              "are bridges with internal, subnet, external and name only")
            if table.get("external") and "name" not in table:
                table["name"] = name  # Compose's name of an external network is its key
            out[new] = {k: table[k] for k in ("internal", "subnet", "external", "name")
                        if k in table and table[k] is not None}
        return out, names

    # ---------------------------------------------------------------- volumes
    def _volumes(self, vols: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        out: dict[str, dict[str, Any]] = {}
        names: dict[str, str] = {}
        if not isinstance(vols, dict):
            self.error(None, "volumes", "volumes", "expected a mapping of volumes")
            return out, names
        for name, spec in vols.items():
            path = f"volumes.{name}"
            new = self._key_name("volumes", name)
            names[name] = new
            table: dict[str, Any] = {}
            for key, v in (spec or {}).items():
                kpath = f"{path}.{key}"
                if key.startswith("x-"):
                    continue
                if key == "driver":
                    table["driver"] = self.text(v, None, "volumes", kpath)
                elif key == "driver_opts" and isinstance(v, dict):
                    table["driver_opts"] = {str(k): self.text(x, None, "volumes", kpath)
                                            for k, x in v.items()}
                elif key == "external":
                    if isinstance(v, dict):
                        table["external"] = True
                        if "name" in v:
                            table["name"] = self.text(v["name"], None, "volumes", kpath)
                    else:
                        table["external"] = self.typed(v, bool, None, "volumes", kpath)
                elif key == "name":
                    table["name"] = self.text(v, None, "volumes", kpath)
                elif key == "labels":
                    table["labels"] = self._kv(v, None, "volumes", kpath)
                else:
                    self.note(None, "volumes", kpath, "not converted: not supported by "
                              "stackctl")
            if table.get("external") and "name" not in table:
                table["name"] = name  # Compose's name of an external volume is its key
            out[new] = {k: table[k] for k in ("driver", "driver_opts", "external", "name",
                                              "labels") if k in table and table[k] is not None}
        return out, names
