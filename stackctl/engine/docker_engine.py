"""The docker-py half of the engine adapter: every action that changes the engine.

This is the only module that imports ``docker``, and it is imported only when a command
first needs it (see :mod:`stackctl.engine.adapter`): reading a local engine goes through
:mod:`stackctl.engine.socket_api` instead. Every method returns plain data or raises
:class:`~stackctl.errors.EngineError` naming the container and the cause. Remove, restart
and update act only on container ids that came from the stack's label-filtered listing.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Optional

import docker
import docker.errors
import docker.types
import docker.utils
import requests.exceptions

from stackctl.engine.facts import LOCK_ROLE, refuse_host_wide
from stackctl.engine.lockinfo import (LABEL_OPERATION, LABEL_SINCE, Holder, holder_labels, judge,
                                      lock_name)
from stackctl.errors import EngineError, EngineUnavailable, LockError
from stackctl.resources import LABEL_GROUP, LABEL_ROLE, LABEL_STACK, Resource, Role, container_name
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

    def running(self) -> list[dict[str, Any]]:
        try:
            return self.api.containers()
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot list the engine's containers: {_explain(exc)}") from None

    def events(self, filters: Mapping[str, list[str]]) -> Iterator[dict[str, Any]]:
        """The engine's filtered event stream (the watch agent on a remote engine)."""
        try:
            stream = self.api.events(decode=True, filters=dict(filters))
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"cannot follow the engine's events: {_explain(exc)}") from None

        def follow() -> Iterator[dict[str, Any]]:
            try:
                yield from stream
            except (docker.errors.APIError, requests.exceptions.RequestException):
                return  # the engine went away: the caller reopens the stream
        return follow()

    def ping(self) -> None:
        try:
            self.api.ping()
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"the engine does not answer: {_explain(exc)}") from None

    def inspect(self, cid: str) -> Optional[dict[str, Any]]:
        try:
            return self.api.inspect_container(cid)
        except docker.errors.NotFound:
            return None  # removed between list and inspect
        except docker.errors.APIError as exc:
            raise EngineError(f"{cid[:12]}: inspect failed: {_explain(exc)}") from None

    def networks(self) -> list[dict[str, Any]]:
        try:
            return list(self.api.networks() or [])
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot list the engine's networks: {_explain(exc)}") from None

    def volumes(self) -> list[dict[str, Any]]:
        try:
            return list((self.api.volumes() or {}).get("Volumes") or [])
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot list the engine's volumes: {_explain(exc)}") from None

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


def _host_entry(text: str) -> str:
    """``HOST:IP`` (IPv6 in brackets allowed, as Compose writes it) -> the engine's
    ``HOST:IP``: the engine splits at the first colon and takes the rest as the address."""
    host, _, ip = text.partition(":")
    return f"{host}:{ip.strip('[]')}"


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
        self.aborted = threading.Event()  # set by abort(): every later write refuses

    def read_by_helper(self, stack: str, group: str, owner: str, keys: list[str],
                       helper_image: str) -> dict[str, str]:
        """Live values in the namespaces of the owner whose id is ``owner``, read by a
        short-lived helper container: the way for an engine whose processes this host
        cannot enter.

        Reads take no lock, so two ``plan`` or ``status`` runs may read at once: each
        read helper has a name of its own (``<stack>-<group>-sysctl-read.<random>``; the
        '.' is in no stack, group or member name, so it can never be a stack's container
        name), and no run removes another's running one.
        """
        if not helper_image:
            return {}
        # Labelled like any container stackctl makes, so a leftover one is found and removed.
        labels = {LABEL_STACK: stack, LABEL_GROUP: group, LABEL_ROLE: Role.HELPER.value}
        name = f"{container_name(stack, group, role=Role.HELPER)}-read.{secrets.token_hex(4)}"
        return self._run_helper(name, owner, helper_image, READ_SCRIPT, keys,
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
        c = r.config
        networks: list[list[Any]] = [] if c.get("network_mode") == "none" else r.extra.get("networks", [])
        host_config = self.api.create_host_config(
            port_bindings=ports, sysctls=r.extra.get("sysctls") or None,
            ipc_mode="shareable", restart_policy=_restart_policy(r.extra.get("restart", "no")),
            network_mode=networks[0][0] if networks else "none",
            dns=c.get("dns") or None, dns_search=c.get("dns_search") or None,
            dns_opt=c.get("dns_opt") or None, shm_size=c.get("shm_size"),
            extra_hosts=[_host_entry(h) for h in c.get("extra_hosts", [])] or None,
        )
        networking = None
        if networks:
            networking = self.api.create_networking_config({
                networks[0][0]: self.api.create_endpoint_config(aliases=list(networks[0][1]))})

        def join_the_rest(cid: str) -> None:
            # API 1.41 takes one network at creation: the others are joined before start.
            for name, aliases, _ in networks[1:]:
                self.connect(stack, cid, r.name, name, list(aliases))
        return self._create_and_start(
            r.name, r.address, image=c["image"],
            command=c["command"] or None, labels=r.labels(stack),
            ports=[(int(k.split("/")[0]), k.split("/")[1]) for k in ports],
            host_config=host_config, hostname=c.get("hostname"), networking_config=networking,
            before_start=join_the_rest,
        )

    def create_member(self, stack: str, r: Resource, owner: str,
                      env_file_values: Optional[Mapping[str, str]] = None) -> str:
        """Create and start a member joined to the owner whose container id is ``owner``
        (an id, never a name: a name can pass to another container), with every option
        its config declares (see stackctl.member_config); ``env_file_values`` come first
        and the spec's ``environment`` wins, as in Compose."""
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

    def _create_and_start(self, name: str, what: str, before_start: Any = None, **kwargs: Any) -> str:
        self._check_aborted(name)
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
        if self.aborted.is_set():
            self._remove_quietly(cid)
            self._check_aborted(name)
        try:
            if before_start is not None:
                before_start(cid)
            self.api.start(cid)
        except (docker.errors.APIError, EngineError) as exc:
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

    def write_sysctls(self, stack: str, r: Resource, owner: str) -> dict[str, str]:
        """Write the group's sysctls into the namespaces of the owner whose container id is
        ``owner``, and read them back."""
        sysctls: dict[str, str] = r.config["sysctls"]
        refuse_host_wide(r)
        values = self._run_helper(r.name, owner, r.extra["image"], WRITE_SCRIPT,
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
            if write:
                self._check_aborted(name)
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
            if write:
                self._check_aborted(name)
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
            raise EngineError(f"{name}: sysctl helper failed in the namespace of owner "
                              f"{owner[:12]}: {cause}")
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
            if (d.get("State") or {}).get("Running"):
                # Still at work: another run's helper, not one an interrupted run left.
                raise EngineError(f"{name}: another sysctl helper of stack {stack!r} is still "
                                  "running; wait for it to finish, then try again")
            self.api.remove_container(d["Id"], force=True)
            return True
        return False

    # Ownership: every container id the applier passes here came from observe(), which
    # lists by this stack's label (or, for a saved plan, was checked against a fresh
    # observe). Docker never changes a container's id or labels, so the id is the proof:
    # no second inspect per operation is needed to know the container is ours.
    def restart(self, stack: str, cid: str, name: str) -> None:
        """Restart (or start, if stopped) a container of the stack, keeping its id."""
        self._check_aborted(name)
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
        A lock whose holder is certainly gone (same host and boot, the process dead: a
        stackctl killed with -9) is taken over, once, by its id: if another stackctl took
        it over first, that one holds it and this one is refused.
        """
        name = lock_name(stack)
        labels = {LABEL_STACK: stack, LABEL_ROLE: LOCK_ROLE, **holder_labels(),
                  LABEL_OPERATION: operation,
                  LABEL_SINCE: datetime.now(timezone.utc).isoformat(timespec="seconds")}
        image = self._any_local_image(images)
        took_over: Optional[Holder] = None
        for attempt in (1, 2):
            try:
                cid = self.api.create_container(image, command=["stackctl-lock"], name=name,
                                                labels=labels, network_disabled=True)["Id"]
                return StackLock(self, cid, name, took_over)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise EngineError(f"{name}: cannot take the stack lock: {_explain(exc)}") from None
            held = self._held_lock(stack, name)
            if held is None:
                continue  # released a moment ago: try once more
            lock_id, holder = held
            if attempt == 1 and holder.state == "dead":
                try:
                    self.api.remove_container(lock_id, force=True)
                except docker.errors.NotFound:
                    pass
                took_over = holder
                continue
            break
        raise LockError(self._lock_message(stack, name)) from None

    def _held_lock(self, stack: str, name: str) -> Optional[tuple[str, Holder]]:
        """The id and holder of the lock container, or None when there is none."""
        try:
            d = self.api.inspect_container(name)
        except docker.errors.NotFound:
            return None
        labels = d["Config"].get("Labels") or {}
        if labels.get(LABEL_STACK) != stack or labels.get(LABEL_ROLE) != LOCK_ROLE:
            raise EngineError(f"{name}: a container that is not stack {stack!r}'s lock holds "
                              "the lock's name; rename or remove it (stackctl never removes "
                              "containers it does not manage)")
        return d["Id"], judge(labels)

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
        held = self._held_lock(stack, name)
        if held is None:
            return f"stack {stack!r} was locked a moment ago; try again"
        lock_id, holder = held
        return (f"stack {stack!r} is locked by another stackctl ({holder.text}; lock ID "
                f"{lock_id[:12]}); wait for it to finish. If no stackctl is at work on this "
                f"stack any more, release it with `stackctl force-unlock PATH --lock-id "
                f"{lock_id[:12]}`")

    def force_unlock(self, stack: str, lock_id: str = "") -> bool:
        """Release a lock left behind; False when there was none.

        Without ``lock_id`` only a lock whose holder is certainly gone is released; any
        other needs its id, as Terraform's ``force-unlock LOCK_ID``: a person must name
        the lock they mean, so a live stackctl's lock is never released by accident.
        """
        name = lock_name(stack)
        held = self._held_lock(stack, name)
        if held is None:
            return False
        cid, holder = held
        if lock_id:
            if len(lock_id) < 12 or not cid.startswith(lock_id.lower()):
                raise LockError(f"{name}: the lock of stack {stack!r} has ID {cid[:12]}, not "
                                f"{lock_id!r}; nothing was released")
        elif holder.state != "dead":
            raise LockError(
                f"stack {stack!r} is locked ({holder.text}; lock ID {cid[:12]}) and its holder "
                f"is not known to be gone: {holder.why}. If you are sure no stackctl is at "
                f"work on this stack, run `stackctl force-unlock PATH --lock-id {cid[:12]}`")
        try:
            self.api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            pass
        return True

    # ----------------------------------------------------------------- abort
    def abort(self, stack: str) -> list[str]:
        """Stop writing at once: no create, start, restart or update from now on, and
        every helper of the stack still running removed (it may be mid-write). Returns
        the names of the helpers removed."""
        self.aborted.set()
        removed = []
        try:
            listed = self.api.containers(all=True, filters={"label": [
                f"{LABEL_STACK}={stack}", f"{LABEL_ROLE}={Role.HELPER.value}"]})
            for c in listed:
                try:
                    self.api.remove_container(c["Id"], force=True)
                    removed.append((c.get("Names") or [c["Id"][:12]])[0].lstrip("/"))
                except docker.errors.APIError as exc:
                    # Gone, or its own run is removing it already ("removal ... is
                    # already in progress"): either way it is being killed.
                    if exc.status_code not in (404, 409):
                        raise
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise EngineError(f"stack {stack!r}: cannot remove its running helpers: {_explain(exc)}") from None
        return removed

    def _remove_quietly(self, cid: str) -> None:
        try:
            self.api.remove_container(cid, force=True)
        except docker.errors.APIError:
            pass

    def _check_aborted(self, name: str) -> None:
        if self.aborted.is_set():
            raise EngineError(f"{name}: not done: stackctl was aborted")

    def update(self, stack: str, cid: str, name: str, changes: Mapping[str, Any]) -> None:
        """Change what Docker changes on a live container, without a restart: the name,
        (``docker update``) the restart policy, mem_limit, cpus and pids_limit, and a
        paused one is unpaused (``state`` -> running), keeping its process and namespace."""
        self._check_aborted(name)
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
            if changes.get("state") == "running":
                self.api.unpause(cid)
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

    # ---------------------------------------------------------- networks, volumes
    def create_network(self, stack: str, r: Resource) -> str:
        """Create a stack network: a bridge carrying the stack's labels."""
        ipam = None
        if r.config.get("subnet"):
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=r.config["subnet"])])
        try:
            return str(self.api.create_network(
                r.name, driver=r.config.get("driver") or "bridge", internal=bool(r.config.get("internal")),
                ipam=ipam, labels=r.labels(stack), check_duplicate=True,
                enable_ipv6=":" in (r.config.get("subnet") or ""))["Id"])
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise EngineError(
                    f"{r.name}: a network of that name exists and is not part of this stack, so "
                    f"{r.address} cannot be created; rename or remove it, or declare it "
                    "external (stackctl never touches networks it does not manage)") from None
            raise EngineError(f"{r.name}: cannot create the network: {_explain(exc)}") from None

    def _ours(self, kind: str, doc: dict[str, Any], stack: str, name: str) -> None:
        if (doc.get("Labels") or {}).get(LABEL_STACK) != stack:
            raise EngineError(f"{name}: the {kind} is not part of stack {stack!r}; not touched")

    def remove_network(self, stack: str, nid: str, name: str) -> None:
        """Remove a network of this stack. Containers of this stack still on it are
        disconnected first; any other container on it stops the removal."""
        try:
            doc = self.api.inspect_network(nid)
        except docker.errors.NotFound:
            return
        self._ours("network", doc, stack, name)
        for cid, endpoint in (doc.get("Containers") or {}).items():
            try:
                labels = self.api.inspect_container(cid)["Config"].get("Labels") or {}
            except docker.errors.NotFound:
                continue
            if labels.get(LABEL_STACK) != stack:
                raise EngineError(f"{name}: container {endpoint.get('Name') or cid[:12]} is on "
                                  "this network and is not part of this stack: disconnect it "
                                  "first (stackctl never touches containers it does not manage)")
            self.disconnect(stack, cid, endpoint.get("Name") or cid[:12], nid)
        try:
            self.api.remove_network(nid)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineError(f"{name}: cannot remove the network: {_explain(exc)}") from None

    def connect(self, stack: str, cid: str, name: str, network: str, aliases: list[str]) -> None:
        """Join a container of this stack to ``network`` with these DNS aliases."""
        try:
            self.api.connect_container_to_network(cid, network, aliases=aliases or None)
        except docker.errors.APIError as exc:
            raise EngineError(f"{name}: cannot join network {network}: {_explain(exc)}") from None

    def disconnect(self, stack: str, cid: str, name: str, network: str) -> None:
        """Take a container of this stack off ``network`` (already off counts as done)."""
        try:
            self.api.disconnect_container_from_network(cid, network, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "is not connected" in _explain(exc):
                return
            raise EngineError(f"{name}: cannot leave network {network}: {_explain(exc)}") from None

    def create_volume(self, stack: str, r: Resource) -> str:
        """Create a named volume carrying the stack's labels."""
        try:
            existing = self.api.inspect_volume(r.name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None and (existing.get("Labels") or {}).get(LABEL_STACK) == stack:
            return str(existing["Name"])
        if existing is not None:
            # Creating a volume that exists returns it unchanged: refuse one that is not ours.
            raise EngineError(
                f"{r.name}: a volume of that name exists and is not part of this stack, so "
                f"{r.address} cannot be created; declare it external (name = {r.name!r}) to "
                "use it, or rename this one")
        try:
            return str(self.api.create_volume(r.name, driver=r.config.get("driver") or "local",
                                              driver_opts=r.config.get("driver_opts") or None,
                                              labels=r.labels(stack))["Name"])
        except docker.errors.APIError as exc:
            raise EngineError(f"{r.name}: cannot create the volume: {_explain(exc)}") from None

    def remove_volume(self, stack: str, name: str) -> None:
        """Remove a volume of this stack, and its data (only destroy --volumes and
        --replace volume.NAME come here)."""
        try:
            self._ours("volume", self.api.inspect_volume(name), stack, name)
            self.api.remove_volume(name)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineError(f"{name}: cannot remove the volume: {_explain(exc)}") from None

    def remove(self, stack: str, cid: str, name: str) -> None:
        """Remove a container of this stack (gone already counts as removed)."""
        try:
            self.api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineError(f"{name}: remove failed: {_explain(exc)}") from None


class StackLock:
    """A held stack lock; release it with ``with`` or :meth:`release`. ``took_over`` names
    the dead holder whose lock this one replaced, if any."""

    def __init__(self, engine: DockerActions, cid: str, name: str,
                 took_over: Optional[Holder] = None) -> None:
        self.engine, self.cid, self.name = engine, cid, name
        self.took_over = took_over

    def release(self) -> None:
        try:
            self.engine.api.remove_container(self.cid, force=True)
        except docker.errors.NotFound:
            pass

    def __enter__(self) -> "StackLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
