"""The spec as validated, typed data: what an operator declared, nothing derived.

These attrs classes are structured from TOML by the one converter in
:mod:`stackctl.spec.converter`; everything downstream (resources, planner) reads them.
Field names are the TOML keys. Each field's metadata carries the description and an
example that the error hints, the JSON Schema (:mod:`stackctl.spec.schema`) and the
reference in docs/spec.md are built from, so the three cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, get_args

import attrs

from stackctl.spec.ports import PortBinding

DEFAULT_OWNER_IMAGE = "registry.k8s.io/pause:3.10"
DEFAULT_HELPER_IMAGE = "busybox:1.36"

DEFAULT_NETWORK = "default"  # the stack's own network: always there, never declared

Restart = Literal["no", "always", "unless-stopped", "on-failure"]
RESTART_POLICIES: tuple[str, ...] = get_args(Restart)


def doc(description: str, example: Any) -> dict[str, Any]:
    """Field metadata: what the key is for, and a value that would be valid there."""
    return {"description": description, "example": example}


# Keys that configure the shared network (or IPC) namespace, so a member may not set
# them. Each maps to (why it is refused, how to fix it).
_SHARED_NETNS = ("members share the owner's network namespace, and Docker refuses it on a "
                 "container that joins another's network")
_TO_GROUP = "move it to the group table [groups.{group}]"
GROUP_ONLY_KEYS: dict[str, tuple[str, str]] = {
    "ports": (
        "members share the owner's network namespace, where ports are published",
        _TO_GROUP,
    ),
    "sysctls": (
        "a member's sysctls would silently rewrite the namespace the whole group shares",
        _TO_GROUP,
    ),
    "hostname": (_SHARED_NETNS, _TO_GROUP),
    "domainname": (_SHARED_NETNS, "remove it: set the domain with hostname on the group"),
    "dns": (_SHARED_NETNS, _TO_GROUP),
    "dns_search": (_SHARED_NETNS, _TO_GROUP),
    "dns_opt": (_SHARED_NETNS, _TO_GROUP),
    "extra_hosts": (_SHARED_NETNS, _TO_GROUP),
    "networks": ("members share the owner's network namespace, which joins the networks",
                 _TO_GROUP),
    "shm_size": (
        "members share the owner's IPC namespace, whose /dev/shm the owner creates",
        _TO_GROUP,
    ),
    "mac_address": (
        _SHARED_NETNS,
        "remove it: a group does not set a MAC address",
    ),
    "network_mode": (
        "every member joins its group's network namespace",
        "remove it: to use another network namespace, put the member in another group",
    ),
    "ipc": (
        "every member joins its group's IPC namespace",
        "remove it: to use another IPC namespace, put the member in another group",
    ),
}

# Keys an operator might reasonably try on a group that stackctl does not support there.
GROUP_UNSUPPORTED_KEYS: dict[str, tuple[str, str]] = {
    "mac_address": ("a group does not set a MAC address", "remove it"),
    "network_mode": (
        "a group always owns its own network namespace",
        "remove it; members join the group's namespace",
    ),
}

# Compose service keys a member refuses with a reason rather than "unknown key".
MEMBER_UNSUPPORTED_KEYS: dict[str, tuple[str, str]] = {
    "privileged": (
        "it unmasks /proc/sys, where a member could rewrite host-wide sysctls, and gives "
        "every capability and device; it also fails on VMs that refuse some capabilities",
        "grant only what is needed: cap_add = [\"NET_ADMIN\"], devices = [\"/dev/net/tun\"]",
    ),
    "pid": ("sharing the host's (or another container's) PID namespace is not supported",
            "remove it"),
    "userns_mode": ("members join their owner's namespaces; a user namespace of their own "
                    "is not supported", "remove it"),
    "container_name": ("container names are STACK-GROUP-MEMBER, so plans can find them",
                       "remove it; rename the member instead"),
    "build": ("stackctl runs images; it does not build them",
              "build the image with docker build -t NAME, then set image = \"NAME\""),
    "links": ("members of a group reach each other on localhost; groups reach each other "
              "by name on their networks", "remove it"),
    "volumes_from": ("mounts are declared one by one", "list the mounts in volumes"),
}

PullPolicy = Literal["missing", "always", "never"]
PULL_POLICIES: tuple[str, ...] = get_args(PullPolicy)


@attrs.frozen
class StackInfo:
    """The ``[stack]`` table: the name that scopes every label and container name."""

    name: str = attrs.field(metadata=doc(
        "The stack's name: prefixes every container name and scopes every label, so "
        "two stacks on one host never touch each other's containers. 1 to 40 of a-z, "
        "0-9, '_' and '-', starting with a letter or digit.", "shop"))


@attrs.frozen
class Defaults:
    """The ``[defaults]`` table: images used by groups that do not override them."""

    owner_image: str = attrs.field(default=DEFAULT_OWNER_IMAGE, metadata=doc(
        "Image of each group's owner, the small container that holds the namespace.",
        "registry.k8s.io/pause:3.10"))
    owner_command: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Command for owner images that need one to stay running; empty means the "
        "image's own.", ["sleep", "2147483647"]))
    helper_image: str = attrs.field(default=DEFAULT_HELPER_IMAGE, metadata=doc(
        "Image of the short-lived helper that writes sysctls into a live namespace; it "
        "must contain a `sysctl` program (busybox has one).", "busybox:1.36"))


@attrs.frozen
class Ulimit:
    """One ulimit: a table with soft and hard, or one integer for both."""

    soft: int = attrs.field(metadata=doc("The soft limit.", 1024))
    hard: int = attrs.field(metadata=doc("The hard limit (at least soft).", 4096))


@attrs.frozen
class Healthcheck:
    """A member's health check, as in Compose: how Docker decides it is healthy."""

    test: Optional[tuple[str, ...]] = attrs.field(default=None, metadata=doc(
        "The check: [\"CMD\", program, args...] runs a program, [\"CMD-SHELL\", \"text\"] "
        "(or a plain string) runs it with /bin/sh, [\"NONE\"] disables the image's check. "
        "Omit it to keep the image's HEALTHCHECK test with these timings.",
        ["CMD", "wget", "-qO-", "http://127.0.0.1/"]))
    interval: Optional[str] = attrs.field(default=None, metadata=doc(
        "Time between checks, a duration such as \"30s\" or \"1m30s\" (Docker: 30s).",
        "5s"))
    timeout: Optional[str] = attrs.field(default=None, metadata=doc(
        "How long one check may run before it counts as failed (Docker: 30s).", "3s"))
    retries: Optional[int] = attrs.field(default=None, metadata=doc(
        "Consecutive failures that make the container unhealthy (Docker: 3).", 3))
    start_period: Optional[str] = attrs.field(default=None, metadata=doc(
        "Start-up time during which failures do not count (Docker: 0s).", "10s"))
    start_interval: Optional[str] = attrs.field(default=None, metadata=doc(
        "Time between checks during start_period (Docker 25+: 5s).", "1s"))
    disable: bool = attrs.field(default=False, metadata=doc(
        "Disable any health check the image declares.", True))


@attrs.frozen
class Logging:
    """Where a member's output goes: a Docker logging driver and its options."""

    driver: Optional[str] = attrs.field(default=None, metadata=doc(
        "The logging driver (the engine's default when omitted).", "json-file"))
    options: dict[str, str] = attrs.field(factory=dict, metadata=doc(
        "Options of the driver.", {"max-size": "10m", "max-file": "3"}))


@attrs.frozen
class Member:
    """An app container that joins its group's network and IPC namespaces."""

    image: str = attrs.field(metadata=doc("The container image (required).", "nginx:1.27"))
    command: Optional[tuple[str, ...]] = attrs.field(default=None, metadata=doc(
        "Arguments replacing the image's CMD; omit it to keep the image's.",
        ["nginx", "-g", "daemon off;"]))
    entrypoint: Optional[tuple[str, ...]] = attrs.field(default=None, metadata=doc(
        "Replaces the image's ENTRYPOINT; omit it to keep the image's.",
        ["/docker-entrypoint.sh"]))
    environment: dict[str, str] = attrs.field(factory=dict, metadata=doc(
        "Environment variables. Values may be strings, numbers or booleans; they are "
        "passed as text.", {"TZ": "UTC"}))
    volumes: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Mounts as 'SOURCE:/container/path[:MODE]': SOURCE is a host path (absolute, or "
        "relative to this spec file's directory when it starts with './' or '../') or the "
        "name of a volume declared in [volumes]; MODE a comma-separated list such as 'ro'.",
        ["./www:/usr/share/nginx/html:ro", "cache:/var/cache/nginx"]))
    restart: Restart = attrs.field(default="no", metadata=doc(
        "Docker restart policy: no, always, unless-stopped or on-failure.",
        "unless-stopped"))
    init: bool = attrs.field(default=False, metadata=doc(
        "Run Docker's init as PID 1 (docker run --init), so zombies are reaped and "
        "signals forwarded.", True))
    depends_on: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Members of the same group that must be created first.", ["app"]))
    env_file: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Files of KEY=VALUE lines read into the environment, relative to the spec file "
        "(one path or a list; later files and `environment` win). Their values are "
        "sensitive: never shown, only hashed.", ["web.env"]))
    user: Optional[str] = attrs.field(default=None, metadata=doc(
        "User (and group) the process runs as: NAME, UID or UID:GID.", "101:101"))
    working_dir: Optional[str] = attrs.field(default=None, metadata=doc(
        "Working directory of the process (absolute).", "/app"))
    read_only: bool = attrs.field(default=False, metadata=doc(
        "Mount the container's root file system read-only.", True))
    tmpfs: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "tmpfs mounts as '/path' or '/path:OPTIONS' (e.g. size=64m,mode=1777).",
        ["/run", "/tmp:size=64m"]))
    cap_add: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Linux capabilities to add (with or without the CAP_ prefix), or ALL.",
        ["NET_ADMIN"]))
    cap_drop: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Linux capabilities to drop, or ALL.", ["ALL"]))
    devices: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Host devices as '/dev/HOST[:/dev/CONTAINER[:PERMISSIONS]]' (permissions of r, "
        "w, m).", ["/dev/net/tun"]))
    ulimits: dict[str, Ulimit] = attrs.field(factory=dict, metadata=doc(
        "Resource limits by name: an integer (soft = hard) or { soft, hard }.",
        {"nofile": {"soft": 1024, "hard": 4096}, "nproc": 512}))
    mem_limit: Optional[str] = attrs.field(default=None, metadata=doc(
        "Memory limit, a size such as \"256m\" or \"1g\" (or bytes as an integer). "
        "Changed in place, without a restart.", "256m"))
    cpus: Optional[float] = attrs.field(default=None, metadata=doc(
        "CPU limit in cores (0.5 is half a core). Changed in place, without a restart.",
        0.5))
    pids_limit: Optional[int] = attrs.field(default=None, metadata=doc(
        "Most processes the container may have (-1: unlimited). Changed in place, "
        "without a restart.", 100))
    labels: dict[str, str] = attrs.field(factory=dict, metadata=doc(
        "Container labels of your own; the stackctl. prefix is reserved.",
        {"com.example.team": "shop"}))
    stop_signal: Optional[str] = attrs.field(default=None, metadata=doc(
        "Signal that stops the container (the image's, else SIGTERM).", "SIGQUIT"))
    stop_grace_period: Optional[str] = attrs.field(default=None, metadata=doc(
        "How long to wait after stop_signal before SIGKILL, a duration (Docker: 10s).",
        "30s"))
    healthcheck: Optional[Healthcheck] = attrs.field(default=None, metadata=doc(
        "How Docker checks the member is healthy; groups that depend on this group "
        "wait for it, and so does `apply --wait`.",
        {"test": ["CMD", "wget", "-qO-", "http://127.0.0.1/"], "interval": "5s"}))
    logging: Optional[Logging] = attrs.field(default=None, metadata=doc(
        "Logging driver and options.", {"driver": "json-file",
                                        "options": {"max-size": "10m"}}))
    security_opt: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Security options such as 'no-new-privileges:true' or 'apparmor=PROFILE'. "
        "'systempaths=unconfined' is refused: it would let a member rewrite host-wide "
        "sysctls.", ["no-new-privileges:true"]))
    pull_policy: PullPolicy = attrs.field(default="missing", metadata=doc(
        "When apply pulls the image: missing (only when absent), always (before every "
        "apply), never (a missing image is an error).", "missing"))


@attrs.frozen
class Group:
    """One namespace group: one owner, its ports and sysctls, and its members."""

    ports: tuple[PortBinding, ...] = attrs.field(default=(), metadata=doc(
        "Ports published on the owner, as '[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]' "
        "(protocol tcp, udp or sctp; tcp by default).",
        ["8080:80", "127.0.0.1:9443:443/tcp", "5353:53/udp"]))
    sysctls: dict[str, str] = attrs.field(factory=dict, metadata=doc(
        "Namespaced kernel settings of the group: net.*, kernel.shm*, kernel.msg*, "
        "kernel.sem and fs.mqueue.*. Values are integers or strings; several values go "
        "in one space-separated string.",
        {"net.core.somaxconn": 1024, "net.ipv4.ip_local_port_range": "1024 65000"}))
    owner_image: Optional[str] = attrs.field(default=None, metadata=doc(
        "Overrides defaults.owner_image for this group.", "registry.k8s.io/pause:3.10"))
    owner_command: Optional[tuple[str, ...]] = attrs.field(default=None, metadata=doc(
        "Overrides defaults.owner_command for this group.", ["sleep", "2147483647"]))
    helper_image: Optional[str] = attrs.field(default=None, metadata=doc(
        "Overrides defaults.helper_image for this group.", "busybox:1.36"))
    networks: tuple[str, ...] = attrs.field(default=("default",), metadata=doc(
        "Networks the owner joins, so every member is reachable there by the group's "
        "name; \"default\" is the stack's own network; [] means loopback only.",
        ["default", "back"]))
    depends_on: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Groups whose members must be running (and healthy, where they have a "
        "healthcheck) before this group's members start.", ["db"]))
    hostname: Optional[str] = attrs.field(default=None, metadata=doc(
        "Host name of the group's namespace, shared by every member (default: the "
        "owner's container id).", "edge"))
    dns: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "DNS servers of the group's namespace.", ["1.1.1.1"]))
    dns_search: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "DNS search domains of the group's namespace.", ["example.internal"]))
    dns_opt: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "resolv.conf options of the group's namespace.", ["ndots:2"]))
    extra_hosts: tuple[str, ...] = attrs.field(default=(), metadata=doc(
        "Extra /etc/hosts entries as 'HOST:IP' (IPv6 in brackets allowed), or "
        "'HOST:host-gateway'.", ["db.legacy:10.0.0.5"]))
    shm_size: Optional[str] = attrs.field(default=None, metadata=doc(
        "Size of /dev/shm in the group's IPC namespace, which every member shares "
        "(a size such as \"256m\", or bytes as an integer; Docker: 64m).", "256m"))
    members: dict[str, Member] = attrs.field(factory=dict, metadata=doc(
        "The group's app containers, by name: [groups.NAME.members.MEMBER].",
        {"web": {"image": "nginx:1.27"}}))


@attrs.frozen
class Network:
    """A ``[networks.NAME]`` table: a network groups can join besides the default one."""

    internal: bool = attrs.field(default=False, metadata=doc(
        "No route out of the network: groups on it reach each other only.", True))
    subnet: Optional[str] = attrs.field(default=None, metadata=doc(
        "The network's IPv4 or IPv6 subnet in CIDR notation (Docker picks one when "
        "omitted).", "10.40.0.0/24"))
    external: bool = attrs.field(default=False, metadata=doc(
        "The network exists already and is not the stack's: never created nor "
        "removed. Requires name.", True))
    name: Optional[str] = attrs.field(default=None, metadata=doc(
        "The network's name on the engine: required with external; otherwise "
        "STACK-NAME by default.", "traefik"))


@attrs.frozen
class Volume:
    """A ``[volumes.NAME]`` table: a named volume members may mount. Kept on destroy."""

    driver: str = attrs.field(default="local", metadata=doc(
        "The volume driver.", "local"))
    driver_opts: dict[str, str] = attrs.field(factory=dict, metadata=doc(
        "Options of the driver.", {"type": "tmpfs", "device": "tmpfs"}))
    external: bool = attrs.field(default=False, metadata=doc(
        "The volume exists already and is not the stack's: never created nor removed. "
        "Requires name.", True))
    name: Optional[str] = attrs.field(default=None, metadata=doc(
        "The volume's name on the engine: required with external; otherwise "
        "STACK-NAME by default.", "pgdata"))
    labels: dict[str, str] = attrs.field(factory=dict, metadata=doc(
        "Volume labels of your own; the stackctl. prefix is reserved.",
        {"com.example.backup": "daily"}))


@attrs.frozen
class Stack:
    """A whole stack: one spec file, or a directory of them merged."""

    stack: StackInfo = attrs.field(metadata=doc(
        "The [stack] table; exactly one file of a stack has it.", {"name": "shop"}))
    defaults: Defaults = attrs.field(default=Defaults(), metadata=doc(
        "Images used by every group that does not override them.",
        {"owner_image": "registry.k8s.io/pause:3.10"}))
    networks: dict[str, Network] = attrs.field(factory=dict, metadata=doc(
        "Networks besides the stack's default one, by name: [networks.NAME].",
        {"back": {"internal": True}}))
    volumes: dict[str, Volume] = attrs.field(factory=dict, metadata=doc(
        "Named volumes members may mount, by name: [volumes.NAME].",
        {"cache": {}}))
    groups: dict[str, Group] = attrs.field(factory=dict, metadata=doc(
        "Namespace groups, by name: [groups.NAME]. Each is one owner container holding "
        "a network and IPC namespace, and the members that join it.",
        {"edge": {"ports": ["8080:80"]}}))

    @property
    def name(self) -> str:
        return self.stack.name

    def owner_image(self, group: Group) -> str:
        return group.owner_image or self.defaults.owner_image

    def owner_command(self, group: Group) -> tuple[str, ...]:
        if group.owner_command is not None:
            return group.owner_command
        return self.defaults.owner_command

    def helper_image(self, group: Group) -> str:
        return group.helper_image or self.defaults.helper_image
