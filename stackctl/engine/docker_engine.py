"""The docker-py half of the engine adapter: every action that changes the engine.

This is the only module that imports ``docker``, and it is imported only when a command
first needs it (see :mod:`stackctl.engine.adapter`): reading a local engine goes through
:mod:`stackctl.engine.socket_api` instead. Every method returns plain data or raises
:class:`~stackctl.errors.EngineError` naming the container and the cause. Remove, restart
and update act only on container ids that came from the stack's label-filtered listing.
"""

from __future__ import annotations

import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional

import docker
import docker.errors
import docker.utils
import requests.exceptions

from stackctl.engine.facts import LOCK_ROLE, refuse_host_wide
from stackctl.errors import EngineError, EngineUnavailable, LockError
from stackctl.resources import LABEL_GROUP, LABEL_ROLE, LABEL_STACK, Resource, Role
from stackctl.spec.options import UNMASKING_CAPABILITIES
from stackctl.spec.ports import parse_port
from stackctl.spec.sysctls import normalize_value

# Runs inside the helper: write every KEY=VALUE argument, then print KEY=VALUE as the
# kernel now reports it. Values arrive as arguments, never as shell text.
WRITE_SCRIPT = (
    'for kv in "$@"; do err=$(sysctl -w "$kv" 2>&1 >/dev/null) || '
    '{ printf "the kernel refused %s: %s\\n" "$kv" "${err#sysctl: }" >&2; exit 1; }; done; '
    'for kv in "$@"; do k="${kv%%=*}"; printf "%s=%s\\n" "$k" "$(sysctl -n "$k")"; done'
)
READ_SCRIPT = 'for k in "$@"; do printf "%s=%s\\n" "$k" "$(sysctl -n "$k")"; done'


def connect_sdk(host: str, timeout: int = 60, ping: bool = True) -> docker.APIClient:
    """docker-py's client for the engine ``from_env()`` finds (DOCKER_HOST and friends)."""
    try:
        client = docker.from_env(timeout=timeout).api
        if ping:
            client.ping()
    except docker.errors.DockerException as exc:
        cause = str(exc)
        if "Permission denied" in cause or "PermissionError" in cause:
            raise EngineUnavailable(
                f"permission denied on the Docker socket ({host}): run as root or as a "
                "member of the docker group") from None
        raise EngineUnavailable(
            f"cannot reach the Docker engine at {host}: {_short(cause)} (start dockerd, "
            "or point DOCKER_HOST at a running engine)") from None
    except requests.exceptions.RequestException as exc:
        raise EngineUnavailable(f"cannot reach the Docker engine at {host}: {_short(str(exc))}") from None
    return client


class DockerPyReader:
    """The reads of :mod:`stackctl.engine.facts` through docker-py (any DOCKER_HOST)."""

    def __init__(self, api: docker.APIClient) -> None:
        self.api = api

    def containers(self, stack: str) -> list[dict[str, Any]]:
        try:
            return self.api.containers(all=True, filters={"label": f"{LABEL_STACK}={stack}"})
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot list the containers of stack {stack!r}: {_explain(exc)}") from None

    def inspect(self, cid: str) -> Optional[dict[str, Any]]:
        try:
            return self.api.inspect_container(cid)
        except docker.errors.NotFound:
            return None  # removed between list and inspect
        except docker.errors.APIError as exc:
            raise EngineError(f"{cid[:12]}: inspect failed: {_explain(exc)}") from None

    def images(self, references: list[str]) -> list[dict[str, Any]]:
        try:
            return list(self.api.images(filters={"reference": references}))
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot list the images {', '.join(references)}: {_explain(exc)}") from None


def _short(text: str) -> str:
    """The last, most specific part of a docker-py/requests error chain."""
    text = str(text).strip()
    # Connection failures arrive wrapped in urllib3's retry text; keep the OS's own words.
    m = re.search(r"\[Errno -?\d+\] ([^'\"()]+)", text) or re.search(r"Error\(-?\d+, '([^']+)'\)", text)
    if m:
        return m.group(1).strip()
    for marker in ("Error while fetching server API version: ", "APIError: "):
        text = text.split(marker)[-1]
    return text.strip("()'\" ")


def _explain(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError):
        return _short(exc.explanation or str(exc))
    return _short(str(exc))


def _busy_port(cause: str) -> Optional[str]:
    """The host address in Docker's "port in use" start errors, or None for others."""
    m = re.search(r"listen (tcp|udp|sctp)[46]? (\S+?): bind: address already in use", cause)
    if m:
        return f"{m.group(2)}/{m.group(1)}"
    m = re.search(r"Bind for (\S+) failed: port is already allocated", cause)
    return m.group(1) if m else None


_HEALTH_KEYS = {"test": "Test", "interval": "Interval", "timeout": "Timeout",
                "retries": "Retries", "start_period": "StartPeriod", "start_interval": "StartInterval"}


def refuse_unconfined(r: Resource) -> None:
    """The last gate before a member is created: validation refuses a member's
    systempaths=unconfined (it unmasks /proc/sys, where host-wide sysctls are written),
    and so does this, as refuse_host_wide does for the helper's sysctls."""
    if any(o.replace(":", "=").strip().startswith("systempaths=")
           for o in r.config.get("security_opt") or ()):
        raise EngineError(f"{r.name}: refusing security_opt systempaths on a member")
    if set(r.config.get("cap_add") or ()) & UNMASKING_CAPABILITIES:
        raise EngineError(f"{r.name}: refusing cap_add SYS_ADMIN or ALL on a member: it "
                          "can remount /proc/sys read-write")


def _restart_policy(name: str) -> Optional[dict[str, Any]]:
    if name == "no":
        return None
    if name == "on-failure":
        return {"Name": name, "MaximumRetryCount": 0}
    return {"Name": name}


class DockerActions:
    """Everything that changes the engine, through docker-py. Thread-safe: the applier
    calls it from worker threads."""

    def __init__(self, api: docker.APIClient) -> None:
        self.api = api

    def read_by_helper(self, stack: str, group: str, owner: str, keys: list[str],
                       helper_image: str) -> dict[str, str]:
        """Live values in the owner's namespaces, read by a short-lived helper container:
        the way for an engine whose processes this host cannot enter."""
        if not helper_image:
            return {}
        # Labelled like any container stackctl makes, so a leftover one is found and removed.
        labels = {LABEL_STACK: stack, LABEL_GROUP: group, LABEL_ROLE: Role.HELPER.value}
        return self._run_helper(f"{owner}-sysctl-read", owner, helper_image, READ_SCRIPT, keys,
                                labels=labels, write=False)

    # --------------------------------------------------------------- actions
    def missing_images(self, images: Iterable[str], no_pull: Iterable[str] = ()) -> dict[str, str]:
        """Images that are neither on the engine nor pullable, with the cause for each.
        Images in ``no_pull`` (pull_policy never) are looked for, not pulled."""
        never = set(no_pull)

        def check(image: str) -> Optional[tuple[str, str]]:
            try:
                self.api.inspect_image(image)
                return None
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                return image, _explain(exc)
            if image in never:
                return image, ("not on the engine, and pull_policy is \"never\": build or load "
                               "it (docker build, docker load), or set pull_policy = \"missing\"")
            cause = self._pull(image)
            return (image, f"not on the engine, and pulling failed: {cause}") if cause else None
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(check, sorted(set(images)))
        return dict(r for r in results if r)

    def _pull(self, image: str) -> str:
        """Pull ``image``; "" when it worked, else the cause."""
        try:
            repo, tag = docker.utils.parse_repository_tag(image)  # knows digests and ports
            self.api.pull(repo, tag=tag or "latest")
            return ""
        except docker.errors.APIError as exc:
            return _explain(exc)
        except requests.exceptions.RequestException as exc:
            return _short(str(exc))

    def pull(self, images: Iterable[str], only_missing: bool = False) -> dict[str, str]:
        """image -> "pulled", "present" (``only_missing`` and on the engine already), or
        "failed: CAUSE". Two at a time, as Docker's own client pulls layers."""
        def one(image: str) -> tuple[str, str]:
            if only_missing:
                try:
                    self.api.inspect_image(image)
                    return image, "present"
                except docker.errors.APIError:
                    pass
            cause = self._pull(image)
            return image, f"failed: {cause}" if cause else "pulled"
        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(pool.map(one, list(dict.fromkeys(images))))

    def create_owner(self, stack: str, r: Resource) -> str:
        """Create and start the owner; on a failed start, remove what was created."""
        ports: dict[str, list[Any]] = {}
        for text in r.config["ports"]:
            p = parse_port(text)
            ports.setdefault(f"{p.container_port}/{p.protocol}", []).append(
                (p.host_ip, p.host_port) if p.host_ip else p.host_port)
        host_config = self.api.create_host_config(
            port_bindings=ports, sysctls=r.extra.get("sysctls") or None,
            ipc_mode="shareable", restart_policy=_restart_policy(r.extra.get("restart", "no")),
        )
        return self._create_and_start(
            r.name, r.address, image=r.config["image"],
            command=r.config["command"] or None, labels=r.labels(stack),
            ports=[(int(k.split("/")[0]), k.split("/")[1]) for k in ports],
            host_config=host_config,
        )

    def create_member(self, stack: str, r: Resource, owner: str,
                      env_file_values: Optional[Mapping[str, str]] = None) -> str:
        """Create and start a member in ``owner``'s namespaces, with every option its
        config declares (see stackctl.member_config); ``env_file_values`` come first and
        the spec's ``environment`` wins, as in Compose."""
        c = r.config
        refuse_unconfined(r)
        restart = _restart_policy(c["restart"])
        log = c.get("logging")
        host_config = self.api.create_host_config(
            network_mode=f"container:{owner}", ipc_mode=f"container:{owner}",
            binds=c["volumes"] or None, restart_policy=restart,
            init=bool(c.get("init")) or None,
            read_only=c.get("read_only"), tmpfs=c.get("tmpfs"),
            cap_add=c.get("cap_add"), cap_drop=c.get("cap_drop"), devices=c.get("devices"),
            ulimits=[{"Name": k, "Soft": v["soft"], "Hard": v["hard"]}
                     for k, v in (c.get("ulimits") or {}).items()] or None,
            mem_limit=c.get("mem_limit"),
            nano_cpus=int(round(c["cpus"] * 1e9)) if c.get("cpus") else None,
            pids_limit=c.get("pids_limit"),
            log_config={"Type": log.get("driver") or "", "Config": log.get("options") or {}} if log else None,
            security_opt=c.get("security_opt"),
        )
        environment = {**(env_file_values or {}), **c["environment"]}
        health = c.get("healthcheck")
        return self._create_and_start(
            r.name, r.address, image=c["image"], command=c["command"],
            entrypoint=c["entrypoint"], environment=environment or None,
            labels={**(c.get("labels") or {}), **r.labels(stack)}, host_config=host_config,
            user=c.get("user"), working_dir=c.get("working_dir"),
            stop_signal=c.get("stop_signal"), stop_timeout=c.get("stop_grace_period"),
            healthcheck=({_HEALTH_KEYS[k]: v for k, v in health.items()} if health else None),
        )

    def _create_and_start(self, name: str, what: str, **kwargs: Any) -> str:
        try:
            cid = self.api.create_container(name=name, detach=True, **kwargs)["Id"]
        except docker.errors.ImageNotFound:
            raise EngineError(f"{name}: image {kwargs.get('image')!r} is not on the engine") from None
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise EngineError(
                    f"{name}: the container name is already taken by a container that is "
                    f"not part of this stack, so {what} cannot be created; rename or remove "
                    "that container (stackctl never removes containers it does not manage)") from None
            raise EngineError(f"{name}: create failed: {_explain(exc)}") from None
        try:
            self.api.start(cid)
        except docker.errors.APIError as exc:
            cause = _explain(exc)
            try:
                self.api.remove_container(cid, force=True)
            except docker.errors.APIError:
                pass
            busy = _busy_port(cause)
            if busy:
                raise EngineError(f"{name}: cannot publish host port {busy}: it is already in "
                                  "use on this host (stop what listens there, or publish "
                                  "another host port)") from None
            raise EngineError(f"{name}: start failed: {cause}") from None
        return cid

    def write_sysctls(self, stack: str, r: Resource) -> dict[str, str]:
        """Write the group's sysctls into the owner's namespaces and read them back."""
        sysctls: dict[str, str] = r.config["sysctls"]
        refuse_host_wide(r)
        values = self._run_helper(r.name, r.extra["owner"], r.extra["image"], WRITE_SCRIPT,
                                  [f"{k}={v}" for k, v in sysctls.items()],
                                  labels=r.labels(stack), write=True)
        wrong = {k: values.get(k) for k, v in sysctls.items() if values.get(k) != v}
        if wrong:
            detail = ", ".join(f"{k}: wanted {sysctls[k]!r}, kernel has {v!r}" for k, v in wrong.items())
            raise EngineError(f"{r.name}: the kernel did not keep the declared values ({detail})")
        return values

    def _run_helper(self, name: str, owner: str, image: str, script: str, args: list[str],
                    labels: dict[str, str], write: bool) -> dict[str, str]:
        host_config = self.api.create_host_config(
            network_mode=f"container:{owner}", ipc_mode=f"container:{owner}",
            # Least privilege that works (measured): root in the container, no
            # capabilities at all, a read-only root, and /proc/sys unmasked only for
            # the writer. `docker run --security-opt systempaths=unconfined` is a CLI
            # spelling; the API takes empty MaskedPaths and ReadonlyPaths instead.
            cap_drop=["ALL"], read_only=True, security_opt=["no-new-privileges"],
        )
        if write:
            host_config["MaskedPaths"] = []
            host_config["ReadonlyPaths"] = []
        def create() -> str:
            return self.api.create_container(image, entrypoint=["sh", "-c", script, "sh"],
                                             command=args, name=name, labels=labels,
                                             host_config=host_config)["Id"]
        try:
            try:
                cid = create()
            except docker.errors.APIError as exc:
                # The name is taken: by a helper an interrupted run left behind (removed,
                # then created again) or by something else (reported). Checking only on a
                # conflict saves an inspect on every helper run.
                if exc.status_code != 409 or not self._remove_leftover(name, labels.get(LABEL_STACK)):
                    raise
                cid = create()
        except docker.errors.ImageNotFound:
            raise EngineError(f"{name}: helper image {image!r} is not on the engine") from None
        except docker.errors.APIError as exc:
            raise EngineError(f"{name}: cannot create the sysctl helper: {_explain(exc)}") from None
        try:
            self.api.start(cid)
            status = self.api.wait(cid, timeout=120)
            out = self.api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
            err = ""
            if status.get("StatusCode") != 0:  # the cause is only needed on failure
                err = self.api.logs(cid, stdout=False, stderr=True).decode(errors="replace")
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise EngineError(f"{name}: sysctl helper failed: {_explain(exc)}") from None
        finally:
            try:
                self.api.remove_container(cid, force=True)
            except docker.errors.APIError:
                pass
        if status.get("StatusCode") != 0:
            cause = err.strip().splitlines()[-1] if err.strip() else f"exit code {status.get('StatusCode')}"
            raise EngineError(f"{name}: sysctl helper failed in {owner}'s namespace: {cause}")
        values = {}
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = normalize_value(value)
        return values

    def _remove_leftover(self, name: str, stack: Optional[str]) -> bool:
        """Remove a helper left by an interrupted run, if (and only if) it is ours."""
        try:
            d = self.api.inspect_container(name)
        except docker.errors.NotFound:
            return True  # gone meanwhile: the name is free again
        labels = d["Config"].get("Labels") or {}
        if stack and labels.get(LABEL_STACK) == stack and labels.get(LABEL_ROLE) == Role.HELPER.value:
            self.api.remove_container(d["Id"], force=True)
            return True
        return False

    # Ownership: every container id the applier passes here came from observe(), which
    # lists by this stack's label (or, for a saved plan, was checked against a fresh
    # observe). Docker never changes a container's id or labels, so the id is the proof:
    # no second inspect per operation is needed to know the container is ours.
    def restart(self, stack: str, cid: str, name: str) -> None:
        """Restart (or start, if stopped) a container of the stack, keeping its id."""
        try:
            self.api.restart(cid, timeout=10)
        except docker.errors.APIError as exc:
            raise EngineError(f"{name}: restart failed: {_explain(exc)}") from None

    # ------------------------------------------------------------------ lock
    def lock(self, stack: str, images: Iterable[str], operation: str) -> "StackLock":
        """Take the stack's lock, held on the engine so it spans processes and machines.

        The lock is a container that is created and never started: the engine creates a
        container name atomically, so two stackctl processes (on any machines sharing the
        engine) cannot both hold it. Its labels say who holds it, since when, for what.
        """
        name = f"{stack}-stackctl-lock"
        holder = f"{os.getpid()}@{socket.gethostname()}"
        labels = {LABEL_STACK: stack, LABEL_ROLE: LOCK_ROLE, "stackctl.lock.holder": holder,
                  "stackctl.lock.operation": operation,
                  "stackctl.lock.since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        image = self._any_local_image(images)
        try:
            cid = self.api.create_container(image, command=["stackctl-lock"], name=name,
                                            labels=labels, network_disabled=True)["Id"]
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise EngineError(f"{name}: cannot take the stack lock: {_explain(exc)}") from None
            raise LockError(self._lock_message(stack, name)) from None
        return StackLock(self, cid, name)

    def _any_local_image(self, preferred: Iterable[str]) -> str:
        for image in preferred:
            try:
                self.api.inspect_image(image)
                return image
            except docker.errors.APIError:
                continue
        local = [t for img in self.api.images() for t in (img.get("RepoTags") or []) if t != "<none>:<none>"]
        if not local:
            raise EngineError("cannot take the stack lock: the engine has no image at all "
                              "to create the lock container from")
        return local[0]

    def _lock_message(self, stack: str, name: str) -> str:
        try:
            labels = self.api.inspect_container(name)["Config"].get("Labels") or {}
        except docker.errors.NotFound:
            return f"stack {stack!r} was locked a moment ago; try again"
        holder = labels.get("stackctl.lock.holder", "?")
        since = labels.get("stackctl.lock.since", "?")
        op = labels.get("stackctl.lock.operation", "?")
        text = (f"stack {stack!r} is locked by another stackctl ({op} by {holder}, since "
                f"{since}); wait for it to finish")
        pid, _, host = holder.partition("@")
        if host == socket.gethostname() and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            text += (f". Process {pid} no longer runs on this host: if no other stackctl is at "
                     f"work, release the lock with `stackctl force-unlock PATH`")
        else:
            text += (" (if its process was killed, release the lock with `stackctl "
                     "force-unlock PATH`)")
        return text

    def force_unlock(self, stack: str) -> bool:
        """Release a lock left behind by a killed process; False when there was none."""
        name = f"{stack}-stackctl-lock"
        try:
            labels = self.api.inspect_container(name)["Config"].get("Labels") or {}
        except docker.errors.NotFound:
            return False
        if labels.get(LABEL_STACK) != stack or labels.get(LABEL_ROLE) != LOCK_ROLE:
            raise EngineError(f"{name}: not a stackctl lock of stack {stack!r}; not touched")
        self.api.remove_container(name, force=True)
        return True

    def update(self, stack: str, cid: str, name: str, changes: Mapping[str, Any]) -> None:
        """Change what Docker changes on a live container, without a restart: the name,
        and (``docker update``) the restart policy, mem_limit, cpus and pids_limit."""
        body: dict[str, Any] = {}
        if "restart" in changes:
            body["RestartPolicy"] = _restart_policy(changes["restart"]) or {"Name": "no"}
        if changes.get("mem_limit"):
            # Swap as at creation (twice the memory), so a smaller limit is not refused
            # for being under the swap limit the container was created with.
            body["Memory"] = int(changes["mem_limit"])
            body["MemorySwap"] = 2 * int(changes["mem_limit"])
        if changes.get("cpus"):
            body["NanoCpus"] = int(round(float(changes["cpus"]) * 1e9))
        if "pids_limit" in changes:
            body["PidsLimit"] = int(changes["pids_limit"] or -1)  # -1: unlimited
        try:
            if body:
                self.api._result(self.api._post_json(
                    self.api._url("/containers/{0}/update", cid), data=body), True)
            if "name" in changes and changes["name"] != name:
                self.api.rename(cid, changes["name"])
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise EngineError(f"{name}: cannot rename to {changes['name']!r}: the name is "
                                  "taken by another container") from None
            raise EngineError(f"{name}: update failed: {_explain(exc)}") from None

    def remove(self, stack: str, cid: str, name: str) -> None:
        """Remove a container of this stack (gone already counts as removed)."""
        try:
            self.api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineError(f"{name}: remove failed: {_explain(exc)}") from None


class StackLock:
    """A held stack lock; release it with ``with`` or :meth:`release`."""

    def __init__(self, engine: DockerActions, cid: str, name: str) -> None:
        self.engine, self.cid, self.name = engine, cid, name

    def release(self) -> None:
        try:
            self.engine.api.remove_container(self.cid, force=True)
        except docker.errors.NotFound:
            pass

    def __enter__(self) -> "StackLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
