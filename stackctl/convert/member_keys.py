"""A Compose service's own keys -> a member table: one to one where stackctl has the key,
a note where it does not (with why), an error where the output would be wrong."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, Optional

from stackctl.convert.base import Base
from stackctl.convert.namespace_keys import GROUP_KEYS
from stackctl.convert.toml_out import Table
from stackctl.spec.options import UNMASKING_CAPABILITIES, capability

# ------------------------------------------------------------------- Compose's keys
# Keys stackctl has no equivalent for, with why and what to do instead.
NOT_SUPPORTED: dict[str, str] = {
    "build": "stackctl runs images and does not build them: build and tag the image "
             "first (docker compose build)",
    "container_name": "stackctl names containers STACK-GROUP-MEMBER itself",
    "links": "every member is reachable by its group's name on the stack network",
    "external_links": "join the container's network with networks instead",
    "privileged": "stackctl refuses privileged members: with every capability and /proc/sys "
                  "unmasked a member could rewrite host-wide sysctls; add only the "
                  "capabilities it needs with cap_add (not SYS_ADMIN)",
    "pid": "members share their group's network and IPC namespaces, not a PID namespace",
    "ipc": "every member shares its group's IPC namespace",
    "uts": "every member shares its group's namespaces",
    "userns_mode": "not supported by stackctl",
    "cgroup": "not supported by stackctl",
    "cgroup_parent": "not supported by stackctl",
    "secrets": "stackctl has no secrets: mount the file with volumes, or use env_file",
    "configs": "stackctl has no configs: mount the file with volumes",
    "profiles": "a stack has no profiles: the service is always part of the stack",
    "expose": "not needed: every port of a member is reachable on its group's networks",
    "domainname": "set the domain with the group's hostname",
    "mac_address": "a group does not set a MAC address",
    "platform": "stackctl runs the image the engine has for its own platform",
    "scale": "a member is one container",
    "stdin_open": "stackctl runs members detached, with no input",
    "tty": "stackctl runs members detached, without a terminal",
    "runtime": "not supported by stackctl",
    "isolation": "not supported by stackctl",
    "volumes_from": "declare the volumes on this member too",
    "group_add": "not supported by stackctl",
    "storage_opt": "not supported by stackctl",
    "device_cgroup_rules": "not supported by stackctl: list the devices with devices",
    "gpus": "not supported by stackctl",
    "credential_spec": "Windows only",
    "oom_kill_disable": "not supported by stackctl",
    "oom_score_adj": "not supported by stackctl",
    "mem_reservation": "not supported by stackctl: mem_limit is",
    "memswap_limit": "not supported by stackctl: mem_limit is",
    "mem_swappiness": "not supported by stackctl",
    "blkio_config": "not supported by stackctl",
    "cpu_count": "use cpus", "cpu_percent": "use cpus", "cpu_shares": "use cpus",
    "cpu_quota": "use cpus", "cpu_period": "use cpus", "cpu_rt_period": "not supported",
    "cpu_rt_runtime": "not supported", "cpuset": "not supported by stackctl",
    "annotations": "not supported by stackctl: use labels",
    "attach": "stackctl does not attach to output", "develop": "Compose Watch only",
    "label_file": "write the labels into labels", "models": "not supported by stackctl",
    "provider": "not supported by stackctl", "post_start": "not supported by stackctl",
    "pre_stop": "not supported by stackctl", "use_api_socket": "not supported by stackctl",
    "pull_refresh_after": "not supported by stackctl",
}


MEMBER_ORDER = ("image", "command", "entrypoint", "environment", "env_file", "volumes",
                 "restart", "init", "depends_on", "user", "working_dir", "read_only", "tmpfs",
                 "cap_add", "cap_drop", "devices", "ulimits", "mem_limit", "cpus",
                 "pids_limit", "labels", "stop_signal", "stop_grace_period", "healthcheck",
                 "logging", "security_opt", "pull_policy")


class MemberKeys(Base):
    # ---------------------------------------------------------------- members
    def _member(self, services: dict[str, Any], name: str, root: str, gname: str) -> Table:
        s = services[name]
        mname = self.names[name]
        m: dict[str, Any] = {}
        base = f"services.{name}"
        for key, v in s.items():
            path = f"{base}.{key}"
            if key.startswith("x-") or key in GROUP_KEYS or key in (
                    "network_mode", "depends_on"):
                continue
            if key == "build":
                if s.get("image") is not None:
                    self.note(name, key, path, "not converted: " + NOT_SUPPORTED[key])
                continue
            if key == "extends":
                self.error(name, key, path, "extends is not supported",
                           "convert the output of `docker compose config --no-interpolate` "
                           "instead")
            elif key in NOT_SUPPORTED:
                if (key == "scale" and v == 1) or (key == "privileged" and v is False):
                    continue
                self.note(name, key, path, "not converted: " + NOT_SUPPORTED[key])
            elif key == "deploy":
                self._deploy(name, v, path, m)
            elif key in MEMBER_ORDER:
                converted = self._member_value(name, key, v, path)
                if converted is not None:
                    m[key] = converted
            else:
                self.error(name, key, path, "not a Compose service key",
                           "Compose refuses it too: remove it, or name it x-...")
        if "image" not in m:
            if "build" in s:
                self.error(name, "build", base, f"service {name!r} has build but no image",
                           "stackctl runs images and does not build them: build and tag it "
                           "(docker compose build), then add image: NAME:TAG")
            else:
                self.error(name, "image", base, f"service {name!r} has no image",
                           "add image: NAME:TAG")
        if name in self.extra_tmpfs:
            m["tmpfs"] = list(m.get("tmpfs", [])) + self.extra_tmpfs[name]
        comments = [f'Compose service "{name}"' + (
            f" (network_mode: {s['network_mode']})" if name in self.joins else "") + "."]
        ordered = {k: m[k] for k in MEMBER_ORDER if k in m}
        table = Table(("groups", gname, "members", mname), ordered, comments)
        self.member_tables[name] = table
        return table

    def _deploy(self, name: str, v: Any, path: str, m: dict[str, Any]) -> None:
        if not isinstance(v, dict):
            self.error(name, "deploy", path, "expected a mapping")
            return
        for key, x in v.items():
            kpath = f"{path}.{key}"
            if key.startswith("x-"):
                continue
            if key == "resources" and isinstance(x, dict):
                for rk, rv in x.items():
                    if rk == "limits" and isinstance(rv, dict):
                        for lk, lv in rv.items():
                            lpath = f"{kpath}.limits.{lk}"
                            target = {"memory": "mem_limit", "cpus": "cpus",
                                      "pids": "pids_limit"}.get(lk)
                            if target is None:
                                self.note(name, "deploy", lpath, "not converted: not "
                                          "supported by stackctl")
                                continue
                            conv = self._member_value(name, target, lv, lpath)
                            if target in m and conv is not None and m[target] != conv:
                                self.error(name, "deploy", lpath, f"differs from the "
                                           f"service's {target} ({m[target]!r})",
                                           "Compose refuses it too: keep one")
                            elif conv is not None:
                                m[target] = conv
                    elif not rk.startswith("x-"):
                        self.note(name, "deploy", f"{kpath}.{rk}", "not converted: stackctl "
                                  "sets limits (mem_limit, cpus, pids_limit), not "
                                  "reservations")
            elif key == "restart_policy" and isinstance(x, dict):
                cond = x.get("condition", "any")
                restart = {"none": "no", "on-failure": "on-failure", "any": "always"}.get(
                    str(cond))
                if restart is None:
                    self.error(name, "deploy", f"{kpath}.condition",
                               f"unknown condition {cond!r}", "use none, on-failure or any")
                elif "restart" not in m:
                    m["restart"] = restart
                extra = [k for k in x if k != "condition"]
                if extra:
                    self.note(name, "deploy", kpath, "not converted: " + ", ".join(extra),
                              "Docker's restart policies have no delay or window")
            elif key == "replicas" and x == 1:
                continue
            else:
                self.note(name, "deploy", kpath, "not converted: a Swarm setting; a "
                          "member is one container on this host")

    def _member_value(self, name: str, key: str, v: Any, path: str) -> Any:
        if v is None:
            return None
        if key == "image":
            return self.text(v, name, key, path)
        if key in ("command", "entrypoint"):
            if isinstance(v, str):
                try:
                    return [self.text(x, name, key, path) for x in shlex.split(v)]
                except ValueError as exc:
                    self.error(name, key, path, f"cannot split the command: {exc}",
                               "write it as a list")
                    return None
            return self._strings(v, name, key, path)
        if key == "environment":
            return self._kv(v, name, key, path, missing=lambda k: "${" + k + "}")
        if key == "env_file":
            return self._env_files(name, v, path) or None  # every file optional and absent
        if key == "volumes":
            return self._mounts(name, v, path)
        if key == "restart":
            text = self.text(v, name, key, path)
            if text.startswith("on-failure:"):
                self.note(name, key, path, f"converted to 'on-failure': {text!r} has a "
                          "retry count, which stackctl does not set")
                return "on-failure"
            return text
        if key in ("init", "read_only"):
            return self.typed(v, bool, name, key, path)
        if key == "pids_limit":
            return self.typed(v, int, name, key, path)
        if key == "cpus":
            return self.typed(v, float, name, key, path)
        if key in ("user", "working_dir", "stop_signal", "mem_limit"):
            return self.text(v, name, key, path)
        if key == "stop_grace_period":
            return self.text(f"{v}s" if isinstance(v, int) else v, name, key, path)
        if key == "cap_add":
            return self._cap_add(name, self._strings(v, name, key, path), path)
        if key == "security_opt":
            return self._security_opts(name, self._strings(v, name, key, path), path)
        if key in ("tmpfs", "cap_drop"):
            return self._strings(v, name, key, path)
        if key == "devices":
            out: list[str] = []
            for i, d in enumerate(v if isinstance(v, list) else [v]):
                if isinstance(d, dict):
                    parts = [str(d.get("source", "")), str(d.get("target", d.get("source", "")))]
                    if d.get("permissions"):
                        parts.append(str(d["permissions"]))
                    d = ":".join(parts)
                text = self.text(d, name, key, f"{path}[{i}]")
                if text.endswith(":rwm") and text.count(":") == 2:
                    text = text[:-4]  # Docker's default permissions, as Compose writes them
                if "=" in text.split(":")[0]:
                    self.note(name, key, f"{path}[{i}]", f"not converted: {text!r} is a CDI "
                              "device, which stackctl does not support")
                    continue
                out.append(text)
            return out
        if key == "ulimits":
            if not isinstance(v, dict):
                self.error(name, key, path, "expected a mapping")
                return None
            limits: dict[str, Any] = {}
            for k, x in v.items():
                if isinstance(x, dict):
                    soft = self.typed(x.get("soft"), int, name, key, f"{path}.{k}.soft")
                    hard = self.typed(x.get("hard"), int, name, key, f"{path}.{k}.hard")
                    if soft is not None and hard is not None:
                        limits[str(k)] = {"soft": soft, "hard": hard}
                else:
                    n = self.typed(x, int, name, key, f"{path}.{k}")
                    if n is not None:
                        limits[str(k)] = n
            return limits
        if key == "labels":
            return self._kv(v, name, key, path)
        if key == "healthcheck":
            return self._healthcheck(name, v, path)
        if key == "logging":
            if not isinstance(v, dict):
                self.error(name, key, path, "expected a mapping")
                return None
            log: dict[str, Any] = {}
            if v.get("driver") is not None:
                log["driver"] = self.text(v["driver"], name, key, path + ".driver")
            if v.get("options"):
                log["options"] = self._kv(v["options"], name, key, path + ".options")
            for k in v:
                if k not in ("driver", "options") and not str(k).startswith("x-"):
                    self.error(name, key, f"{path}.{k}", "not a Compose logging key")
            return log
        if key == "pull_policy":
            policy = str(v)
            mapped = {"always": "always", "never": "never", "missing": "missing",
                      "if_not_present": "missing"}.get(policy)
            if mapped is None:
                self.note(name, key, path, f"converted to 'missing': stackctl has no "
                          f"{policy!r} policy", "pull when you choose with `stackctl pull`")
                return "missing"
            return mapped
        return None

    def _healthcheck(self, name: str, v: Any, path: str) -> Optional[dict[str, Any]]:
        if not isinstance(v, dict):
            self.error(name, "healthcheck", path, "expected a mapping")
            return None
        hc: dict[str, Any] = {}
        for k, x in v.items():
            kpath = f"{path}.{k}"
            if str(k).startswith("x-") or x is None:
                continue
            if k == "test":
                hc["test"] = (self.text(x, name, "healthcheck", kpath) if isinstance(x, str)
                              else self._strings(x, name, "healthcheck", kpath))
            elif k in ("interval", "timeout", "start_period", "start_interval"):
                hc[k] = self.text(x, name, "healthcheck", kpath)
            elif k == "retries":
                hc[k] = self.typed(x, int, name, "healthcheck", kpath)
            elif k == "disable":
                hc[k] = self.typed(x, bool, name, "healthcheck", kpath)
            else:
                self.error(name, "healthcheck", kpath, "not a Compose healthcheck key")
        order = ("test", "interval", "timeout", "retries", "start_period", "start_interval",
                 "disable")
        return {k: hc[k] for k in order if k in hc and hc[k] is not None}

    def _cap_add(self, name: str, caps: Optional[list[str]], path: str) -> Optional[list[str]]:
        """SYS_ADMIN (and ALL, which holds it) are refused on members, as privileged is:
        with it a process can remount /proc/sys read-write. Left out with a note, so the
        rest converts; the note says what the program loses."""
        if caps is None:
            return None
        out = []
        for i, cap in enumerate(caps):
            if capability(cap) in UNMASKING_CAPABILITIES:
                self.note(name, "cap_add", f"{path}[{i}]", f"not converted: stackctl refuses "
                          f"{cap!r} on a member: with it a process can remount /proc/sys "
                          "read-write and rewrite host-wide sysctls",
                          "add only the capabilities the program needs; a program that "
                          "needs SYS_ADMIN, e.g. for FUSE mounts, cannot run as a stackctl member")
            else:
                out.append(cap)
        return out

    def _security_opts(self, name: str, opts: Optional[list[str]],
                       path: str) -> Optional[list[str]]:
        """Compose reads a seccomp profile file itself and sends the engine its JSON; the
        spec holds the JSON (the engine cannot read the file), so the file is inlined.
        systempaths=unconfined unmasks /proc/sys and is refused on members."""
        if opts is None:
            return None
        out = []
        for i, opt in enumerate(opts):
            opath = f"{path}[{i}]"
            key, sep, value = opt.replace(":", "=", 1).partition("=")
            if key.strip() == "systempaths":
                self.note(name, "security_opt", opath, f"not converted: stackctl refuses "
                          f"{opt!r} on a member: it unmasks /proc/sys, where a member could "
                          "rewrite host-wide sysctls",
                          "set the group's namespaced sysctls with sysctls instead")
            elif key == "seccomp" and sep and value != "unconfined" and not value.startswith("{"):
                inlined = self._seccomp_file(name, value, opath)
                if inlined is not None:
                    out.append(inlined)
            else:
                out.append(opt)
        return out

    def _seccomp_file(self, name: str, file: str, path: str) -> Optional[str]:
        where = Path(self.p.project_dir, os.path.expanduser(file))
        try:
            profile = json.loads(where.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            self.error(name, "security_opt", path, f"cannot read the seccomp profile "
                       f"{file!r} ({where}): {getattr(e, 'strerror', None) or e}",
                       "stackctl holds the profile's JSON in the spec: give a readable JSON "
                       "file, or seccomp=unconfined")
            return None
        return "seccomp=" + json.dumps(profile, separators=(",", ":"), sort_keys=True)

    def _env_files(self, name: str, v: Any, path: str) -> list[str]:
        out: list[str] = []
        for i, entry in enumerate(v if isinstance(v, list) else [v]):
            epath = f"{path}[{i}]"
            required = True
            if isinstance(entry, dict):
                required = entry.get("required", True) is not False
                if entry.get("format") not in (None, "", "env"):
                    self.note(name, "env_file", epath + ".format", "not converted: stackctl "
                              "reads KEY=VALUE env files")
                entry = entry.get("path", "")
            text = self.text(entry, name, "env_file", epath)
            if not required:
                where = Path(self.p.project_dir, text)
                if "$" not in text and not where.exists():
                    self.note(name, "env_file", epath, f"not converted: the optional env "
                              f"file {text!r} does not exist",
                              "stackctl requires every env file it is given")
                    continue
            out.append(self.rebase(text))
        return out

    def _mounts(self, name: str, v: Any, path: str) -> list[str]:
        out: list[str] = []
        if not isinstance(v, list):
            self.error(name, "volumes", path, "expected a list")
            return out
        for i, entry in enumerate(v):
            vpath = f"{path}[{i}]"
            if isinstance(entry, dict):
                kind = entry.get("type", "volume")
                source = entry.get("source")
                target = entry.get("target")
                modes: list[str] = []
                if entry.get("read_only"):
                    modes.append("ro")
                if kind == "tmpfs":
                    opts = []
                    tmpfs = entry.get("tmpfs") or {}
                    if tmpfs.get("size") is not None:
                        opts.append(f"size={tmpfs['size']}")
                    if tmpfs.get("mode") is not None:
                        mode = tmpfs["mode"]
                        opts.append(f"mode={mode:o}" if isinstance(mode, int) else f"mode={mode}")
                    self.note(name, "volumes", vpath, "moved to tmpfs", "stackctl lists "
                              "tmpfs mounts under tmpfs")
                    self._pending_tmpfs(name, f"{target}" + (":" + ",".join(opts) if opts
                                                             else ""))
                    continue
                if kind not in ("bind", "volume"):
                    self.note(name, "volumes", vpath, f"not converted: {kind} mounts are "
                              "not supported by stackctl")
                    continue
                bind = entry.get("bind") or {}
                if bind.get("propagation"):
                    modes.append(str(bind["propagation"]))
                if bind.get("selinux"):
                    modes.append(str(bind["selinux"]))
                if (entry.get("volume") or {}).get("nocopy"):
                    modes.append("nocopy")
                if (entry.get("volume") or {}).get("subpath"):
                    self.note(name, "volumes", vpath + ".volume.subpath",
                              "not converted: stackctl mounts whole volumes")
                if entry.get("consistency"):
                    modes.append(str(entry["consistency"]))
                if source is None:
                    self.note(name, "volumes", vpath, "not converted: an anonymous volume",
                              "declare a named volume and mount it")
                    continue
                text = f"{source}:{target}" + (":" + ",".join(modes) if modes else "")
                is_path = kind == "bind"
            else:
                text = str(entry)
                parts = text.split(":")
                if len(parts) == 1:
                    self.note(name, "volumes", vpath, f"not converted: {text!r} is an "
                              "anonymous volume", "declare a named volume and mount it")
                    continue
                source = parts[0]
                is_path = source.startswith((".", "/", "~", "$"))
            text = self.text(text, name, "volumes", vpath)
            src, rest = text.split(":", 1)
            if is_path:
                src = self.rebase(src)
            elif src not in self.vol_names:
                self.error(name, "volumes", vpath, f"volume {src!r} is not declared",
                           "declare it under the top-level volumes, as Compose requires")
                continue
            else:
                src = self.vol_names[src]
            out.append(f"{src}:{rest}")
        return out

    def _pending_tmpfs(self, name: str, spec: str) -> None:
        self.extra_tmpfs.setdefault(name, []).append(spec)
