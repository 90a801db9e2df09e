"""The keys that configure a shared namespace (ports, sysctls, networks, hostname, dns,
extra_hosts, shm_size): from the service that holds the namespace to its group, and
what a service that joins it may (and may not) bring."""

from __future__ import annotations

import re
from typing import Any, Optional

from stackctl.convert.base import Base
from stackctl.convert.variables import has_variable

GROUP_KEYS = ("ports", "sysctls", "networks", "hostname", "dns", "dns_search", "dns_opt",
               "extra_hosts", "shm_size")


# On a service that joins another's network, Docker itself refuses these ("conflicting
# options"), and Compose refuses networks with network_mode.
REFUSED_ON_JOINERS = ("ports", "networks", "hostname", "dns", "dns_search", "dns_opt",
                       "extra_hosts")


class NamespaceKeys(Base):
    # ---------------------------------------------------------------- group keys
    def _group_keys(self, services: dict[str, Any], root: str, names: list[str],
                    group: dict[str, Any]) -> None:
        values: dict[str, Any] = {}
        for n in names:
            s = services[n]
            for key in GROUP_KEYS:
                if key not in s or s[key] is None:
                    continue
                path = f"services.{n}.{key}"
                if n != root and key in REFUSED_ON_JOINERS:
                    self.error(n, key, path, f"{n!r} joins {root!r}'s network namespace "
                               f"(network_mode), where Docker refuses {key}",
                               f"move it to service {root!r}, which holds the namespace")
                    continue
                converted = self._group_value(n, key, s[key], path, s)
                if converted is None:
                    continue
                if n != root:  # sysctls, shm_size: Compose applied them to the namespace
                    if key == "sysctls":
                        clash = [k for k, x in converted.items()
                                 if k in values.get(key, {}) and values[key][k] != x]
                        if clash:
                            self.error(n, key, path, f"sets {', '.join(clash)} to another "
                                       f"value than {root!r} does, in the namespace they "
                                       "share", "set each sysctl once, on " + repr(root))
                            continue
                        self.note(n, key, path, "moved to the group: they apply to the "
                                  "whole namespace, as they did in Compose")
                        converted = {**values.get(key, {}), **converted}
                    elif key == "shm_size":
                        if key in values and values[key] != converted:
                            self.error(n, key, path, f"differs from {root!r}'s, and the "
                                       "group's members share one /dev/shm",
                                       "set one shm_size, on " + repr(root))
                            continue
                        self.note(n, key, path, "moved to the group: its members share "
                                  "one IPC namespace and /dev/shm")
                values[key] = converted
        if services[root].get("network_mode") == "none":
            values["networks"] = []
        for key in ("ports", "sysctls", "networks", "depends_on", "hostname", "dns",
                    "dns_search", "dns_opt", "extra_hosts", "shm_size"):
            if key in values:
                group[key] = values[key]

    def _group_value(self, n: str, key: str, v: Any, path: str, s: dict[str, Any]) -> Any:
        if key == "ports":
            return self._ports(n, v, path)
        if key == "sysctls":
            out: dict[str, Any] = {}
            if isinstance(v, dict):
                for k, x in v.items():
                    out[str(k)] = x if isinstance(x, int) and not isinstance(x, bool) else \
                        self.text(x, n, key, f"{path}.{k}")
            else:
                out = dict(self._kv(v, n, key, path))
            # "1" from the list form reads better as 1; both mean the same to stackctl
            return {k: int(x) if isinstance(x, str) and re.fullmatch(r"0|[1-9][0-9]{0,17}", x)
                    else x for k, x in out.items()}
        if key == "networks":
            if s.get("network_mode") is not None:
                self.error(n, key, path, "network_mode and networks are both set",
                           "Compose refuses it too: keep one")
                return None
            nets = v if isinstance(v, dict) else {str(x): None for x in (v or [])}
            out_nets = []
            for net, opts in nets.items():
                if net not in self.net_names:
                    self.error(n, key, f"{path}.{net}", f"network {net!r} is not declared",
                               "declare it under the top-level networks, as Compose "
                               "requires")
                    continue
                out_nets.append(self.net_names[net])
                for k in (opts or {}):
                    if not str(k).startswith("x-"):
                        self.note(n, key, f"{path}.{net}.{k}", "not converted: a group is "
                                  "reachable by its own name and MEMBER.GROUP on its networks")
            # ["default"] is a group's default: `docker compose config` writes it on every
            # service, and leaving it out reads the same
            return None if out_nets == ["default"] else out_nets
        if key in ("hostname",):
            return self.text(v, n, key, path)
        if key in ("dns", "dns_search", "dns_opt"):
            return self._strings(v, n, key, path)
        if key == "extra_hosts":
            hosts: list[str] = []
            if isinstance(v, dict):
                for h, ips in v.items():
                    for ip in (ips if isinstance(ips, list) else [ips]):
                        hosts.append(self._host(str(h), self.text(ip, n, key, path)))
            else:
                for i, item in enumerate(self._strings(v, n, key, path)):
                    sep = "=" if "=" in item else ":"
                    h, _, ip = item.partition(sep)
                    hosts.append(self._host(h, ip))
            return hosts
        if key == "shm_size":
            return self.text(v, n, key, path)
        return None

    @staticmethod
    def _host(host: str, ip: str) -> str:
        ip = ip.strip()
        if ":" in ip and not ip.startswith("["):
            ip = f"[{ip}]"
        return f"{host}:{ip}"

    def _ports(self, n: str, v: Any, path: str) -> list[str]:
        out: dict[tuple[str, str, str, str], str] = {}
        if not isinstance(v, list):
            self.error(n, "ports", path, "expected a list of ports")
            return []
        for i, entry in enumerate(v):
            ppath = f"{path}[{i}]"
            if isinstance(entry, dict):
                target = entry.get("target")
                if target is None:
                    self.error(n, "ports", ppath, "the port has no target")
                    continue
                host_ip = str(entry.get("host_ip") or "")
                published = entry.get("published")
                proto = str(entry.get("protocol") or "tcp")
                for k in entry:
                    # mode: ingress is the default (and matters to Swarm only), as
                    # `docker compose config` writes it on every port
                    if k in ("name", "app_protocol") or (k == "mode" and
                                                         entry[k] != "ingress"):
                        self.note(n, "ports", f"{ppath}.{k}", "not converted: stackctl "
                                  "publishes plain host ports")
                triples = self._port_pairs(n, ppath, host_ip, published, str(target))
            elif isinstance(entry, str) and has_variable(entry):
                # "${PORT:-8080}:80": read only once stackctl substitutes the variable
                text = self.text(entry, n, "ports", ppath)
                out[("", text, "", "")] = text
                continue
            elif isinstance(entry, (str, int)):
                text = str(entry)
                proto = "tcp"
                if "/" in text:
                    text, proto = text.rsplit("/", 1)
                host_ip, published, target_text = "", None, text
                if text.startswith("["):
                    ip_end = text.find("]")
                    host_ip, rest = text[1:ip_end], text[ip_end + 2:]
                    published, _, target_text = rest.rpartition(":")
                else:
                    parts = text.rsplit(":", 2)
                    if len(parts) == 3:
                        host_ip, published, target_text = parts
                    elif len(parts) == 2:
                        published, target_text = parts
                triples = self._port_pairs(n, ppath, host_ip, published, target_text)
            else:
                self.error(n, "ports", ppath, "expected a port string or mapping")
                continue
            for ip, host, container in triples:
                ip_text = f"[{ip}]:" if ":" in ip else (f"{ip}:" if ip else "")
                text = f"{ip_text}{host}:{container}" + ("" if proto == "tcp" else f"/{proto}")
                key = (ip if ip not in ("0.0.0.0",) else "", host, container, proto)
                out[key] = self.text(text, n, "ports", ppath)
        return list(out.values())

    def _port_pairs(self, n: str, path: str, ip: str, published: Any, target: str
                    ) -> list[tuple[str, str, str]]:
        host = "" if published is None else str(published)
        if has_variable(host) or has_variable(target) or has_variable(ip):
            if not host:
                self.note(n, "ports", path, "not converted: no host port",
                          "stackctl publishes on a host port you choose: write HOST:CONTAINER")
                return []
            return [(ip, host, target)]
        if not host:
            self.note(n, "ports", path, f"not converted: {target} has no host port (Compose "
                      "picks a random one)", "stackctl publishes on a host port you choose: "
                      f"write HOST:{target}")
            return []

        def span(text: str) -> Optional[list[int]]:
            m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", text)
            if not m:
                return None
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            return list(range(lo, hi + 1)) if lo <= hi else None

        hosts, targets = span(host), span(target)
        if hosts is None or targets is None:
            self.error(n, "ports", path, f"cannot read the port {host}:{target}",
                       "write HOST:CONTAINER, a range on both sides, or a long-syntax port")
            return []
        if len(hosts) != len(targets):
            if len(targets) == 1:
                self.note(n, "ports", path, f"not converted: {host}:{target} lets Docker pick "
                          "a host port in a range", "write one host port")
            else:
                self.error(n, "ports", path, f"the ranges {host} and {target} differ in "
                           "length", "Compose refuses it too")
            return []
        return [(ip, str(h), str(t)) for h, t in zip(hosts, targets)]
