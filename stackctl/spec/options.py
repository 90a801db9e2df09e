"""Rules for a member's container options: what the engine would refuse at create time,
or accept and get wrong, found offline with the key path and the fix.

Each rule yields ``(key path, message, hint)`` like :mod:`stackctl.spec.rules`, which
runs them. The spellings accepted are Compose's, and :mod:`stackctl.member_config`
normalizes them afterwards, so it can rely on what these rules let through.
"""

from __future__ import annotations

import difflib
import re
from typing import Iterator, Optional, Union

from stackctl.spec.model import Healthcheck, Member, Stack
from stackctl.spec.units import DURATION_HINT, SIZE_HINT, UnitError, parse_duration, parse_size

KeyPath = tuple[Union[str, int], ...]
Found = tuple[KeyPath, str, str]

# linux/capability.h, as Docker's capability list (moby/pkg/capabilities) knows them.
CAPABILITIES = frozenset("""
CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO
SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME
SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG
WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE""".split())

# Capabilities that let a member remount /proc/sys read-write (CAP_SYS_ADMIN), measured:
# refused for the reason systempaths=unconfined is.
UNMASKING_CAPABILITIES = frozenset({"SYS_ADMIN", "ALL"})

# Docker's ulimit names (docker/go-units ulimit.go).
ULIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")

# signal(7) names the engine accepts for StopSignal; RT signals as SIGRTMIN+n / SIGRTMAX-n.
SIGNALS = frozenset("""
SIGABRT SIGALRM SIGBUS SIGCHLD SIGCLD SIGCONT SIGFPE SIGHUP SIGILL SIGINT SIGIO SIGIOT SIGKILL
SIGPIPE SIGPOLL SIGPROF SIGPWR SIGQUIT SIGSEGV SIGSTKFLT SIGSTOP SIGSYS SIGTERM SIGTRAP SIGTSTP
SIGTTIN SIGTTOU SIGURG SIGUSR1 SIGUSR2 SIGVTALRM SIGWINCH SIGXCPU SIGXFSZ SIGRTMIN SIGRTMAX""".split())
_RT_SIGNAL = re.compile(r"SIGRTMIN\+([0-9]|1[0-5])|SIGRTMAX-([0-9]|1[0-4])")

# Docker refuses a memory limit under 6 MiB ("Minimum memory limit allowed is 6MB").
MIN_MEMORY = 6 * 1024 * 1024

_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?(?::[A-Za-z0-9_][A-Za-z0-9_.-]*\$?)?")
_PERMISSIONS = re.compile(r"[rwm]{1,3}")
_TMPFS_FLAGS = frozenset("""ro rw noexec exec nosuid suid nodev dev sync async dirsync mand nomand
atime noatime diratime nodiratime relatime norelatime strictatime nostrictatime tmpcopyup
notmpcopyup""".split())
_TMPFS_VALUES = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks")
_SECURITY_OPT = re.compile(r"(no-new-privileges(?:[:=](?:true|false))?|apparmor[=:].+|label[=:].+|"
                           r"seccomp[=:](?:unconfined|\{.*\}))", re.S)


def capability(name: str) -> str:
    """``"cap_net_admin"`` -> ``"NET_ADMIN"``; ``ALL`` stays ``ALL``."""
    upper = name.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def check(stack: Stack) -> Iterator[Found]:
    for gname, group in stack.groups.items():
        for mname, member in group.members.items():
            yield from _member(member, ("groups", gname, "members", mname))


def _member(m: Member, path: KeyPath) -> Iterator[Found]:
    if m.user is not None and not _USER.fullmatch(m.user):
        yield (path + ("user",), f"{m.user!r} is not a user",
               "write NAME, UID, NAME:GROUP or UID:GID, e.g. \"101:101\"")
    if m.working_dir is not None and not m.working_dir.startswith("/"):
        yield (path + ("working_dir",), f"working directory {m.working_dir!r} is not absolute",
               "write an absolute path, e.g. \"/app\"")
    for key in ("cap_add", "cap_drop"):
        for i, cap in enumerate(getattr(m, key)):
            yield from _capability(cap, path + (key, i))
    for i, cap in enumerate(m.cap_add):
        if capability(cap) in UNMASKING_CAPABILITIES:
            yield (path + ("cap_add", i), f"{cap!r} is refused on a member: with it a process "
                   "can remount /proc/sys read-write and rewrite host-wide sysctls, unless an "
                   "AppArmor profile stops it",
                   "add only the capabilities the program needs, e.g. NET_ADMIN")
    for i, device in enumerate(m.devices):
        yield from _device(device, path + ("devices", i))
    yield from _tmpfs(m.tmpfs, path + ("tmpfs",))
    for name, limit in m.ulimits.items():
        yield from _ulimit(name, limit.soft, limit.hard, path + ("ulimits", name))
    if m.mem_limit is not None:
        yield from _memory(m.mem_limit, path + ("mem_limit",))
    if m.cpus is not None and m.cpus <= 0:
        yield path + ("cpus",), f"cpus = {m.cpus:g} is not a CPU limit", "write a positive number, e.g. 0.5"
    if m.pids_limit is not None and (m.pids_limit == 0 or m.pids_limit < -1):
        yield (path + ("pids_limit",), f"pids_limit = {m.pids_limit} is not a limit",
               "write a number of processes of at least 1, or -1 for unlimited")
    for key in m.labels:
        if key.lower().startswith("stackctl."):
            yield (path + ("labels", key), f"label {key!r} is in the reserved stackctl. namespace",
                   "stackctl's own labels say which stack owns a container: use another "
                   "prefix, e.g. 'com.example.'")
        elif not key.strip():
            yield path + ("labels", key), "a label name is empty", "name the label"
    if m.stop_signal is not None:
        yield from _signal(m.stop_signal, path + ("stop_signal",))
    if m.stop_grace_period is not None:
        yield from _duration(m.stop_grace_period, path + ("stop_grace_period",))
    if m.healthcheck is not None:
        yield from _healthcheck(m.healthcheck, path + ("healthcheck",))
    if m.logging is not None and m.logging.driver is not None and not m.logging.driver.strip():
        yield path + ("logging", "driver"), "the logging driver is empty", "name a driver, e.g. \"json-file\", or leave it out"
    for i, opt in enumerate(m.security_opt):
        yield from _security_opt(opt, path + ("security_opt", i))


def _capability(cap: str, path: KeyPath) -> Iterator[Found]:
    name = capability(cap)
    if name == "ALL" or name in CAPABILITIES:
        return
    close = difflib.get_close_matches(name, sorted(CAPABILITIES), n=1, cutoff=0.6)
    hint = (f"did you mean {close[0]!r}?" if close
            else "write a capability name such as NET_ADMIN, with or without CAP_, or ALL")
    yield path, f"unknown capability {cap!r}", hint


def _device(device: str, path: KeyPath) -> Iterator[Found]:
    hint = "write '/dev/HOST', '/dev/HOST:/dev/CONTAINER' or '/dev/HOST:/dev/CONTAINER:rwm'"
    parts = device.split(":")
    if len(parts) == 2 and _PERMISSIONS.fullmatch(parts[1]):
        parts = [parts[0], parts[0], parts[1]]  # '/dev/HOST:rw', as Docker reads it
    if len(parts) > 3 or not all(parts):
        yield path, f"cannot read device {device!r}", hint
        return
    for p in parts[:2]:
        if not p.startswith("/"):
            yield path, f"device path {p!r} in {device!r} is not absolute", hint
            return
    if len(parts) == 3 and (not _PERMISSIONS.fullmatch(parts[2]) or len(set(parts[2])) != len(parts[2])):
        yield (path, f"device permissions {parts[2]!r} in {device!r} are not a combination of "
               "r, w and m", "combine r to read, w to write and m to mknod, e.g. 'rwm'")


def _tmpfs(mounts: tuple[str, ...], path: KeyPath) -> Iterator[Found]:
    seen: dict[str, int] = {}
    for i, mount in enumerate(mounts):
        target, _, options = mount.partition(":")
        here = path + (i,)
        if not target.startswith("/"):
            yield (here, f"tmpfs path {target!r} is not absolute",
                   "write '/path' or '/path:size=64m,mode=1777'")
            continue
        if target.rstrip("/") == "":
            yield here, "a tmpfs cannot be mounted over the container's root", "mount it on a directory below '/'"
            continue
        if target.rstrip("/") in seen:
            yield here, f"tmpfs path {target!r} is already mounted by tmpfs[{seen[target.rstrip('/')]}]", "mount each path once"
        seen.setdefault(target.rstrip("/"), i)
        for option in filter(None, options.split(",")) if options else ():
            problem = _tmpfs_option(option)
            if problem:
                yield here, f"tmpfs {mount!r}: {problem[0]}", problem[1]


def _tmpfs_option(option: str) -> Optional[tuple[str, str]]:
    key, eq, value = option.partition("=")
    if not eq:
        if key in _TMPFS_FLAGS:
            return None
        return f"unknown option {key!r}", "use size=, mode=, uid=, gid= or flags such as noexec"
    if key not in _TMPFS_VALUES:
        return f"unknown option {key!r}", "use size=, mode=, uid=, gid=, nr_inodes= or nr_blocks="
    if key == "size":
        try:
            parse_size(value)
        except UnitError:
            return f"size {value!r} is not a size", SIZE_HINT
    elif key == "mode" and not re.fullmatch(r"[0-7]{3,4}", value):
        return f"mode {value!r} is not an octal mode", "write an octal mode, e.g. mode=1777"
    elif key != "mode" and not value.isdigit():
        return f"{key} {value!r} is not a number", f"write a whole number, e.g. {key}=1000"
    return None


def _ulimit(name: str, soft: int, hard: int, path: KeyPath) -> Iterator[Found]:
    if name not in ULIMITS:
        close = difflib.get_close_matches(name, ULIMITS, n=1, cutoff=0.6)
        yield (path, f"unknown ulimit {name!r}",
               f"did you mean {close[0]!r}?" if close else "use one of: " + ", ".join(ULIMITS))
        return
    if soft < -1 or hard < -1:
        yield path, f"ulimit {name} is negative", "write a limit of at least 0, or -1 for unlimited"
    elif hard != -1 and (soft == -1 or soft > hard):
        yield (path, f"ulimit {name}: soft limit {soft} is above the hard limit {hard}",
               "the soft limit may be at most the hard one: raise hard or lower soft")


def _memory(text: str, path: KeyPath) -> Iterator[Found]:
    try:
        size = parse_size(text)
    except UnitError as exc:
        yield path, str(exc), SIZE_HINT
        return
    if size < MIN_MEMORY:
        yield (path, f"mem_limit {text!r} is under Docker's minimum of 6m",
               "give at least \"6m\", or leave mem_limit out for no limit")


def _duration(text: str, path: KeyPath, minimum: int = 0) -> Iterator[Found]:
    try:
        value = parse_duration(text)
    except UnitError as exc:
        yield path, str(exc), DURATION_HINT
        return
    if minimum and 0 < value < minimum:
        yield path, f"{text!r} is under Docker's minimum of 1ms", "give at least \"1ms\", or \"0s\" for Docker's default"


def _signal(text: str, path: KeyPath) -> Iterator[Found]:
    upper = text.strip().upper()
    if upper.isdigit():
        if not 1 <= int(upper) <= 64:
            yield path, f"signal number {upper} does not exist", "signal numbers are 1 to 64; or write a name such as SIGTERM"
        return
    name = upper if upper.startswith("SIG") else "SIG" + upper
    if name in SIGNALS or _RT_SIGNAL.fullmatch(name):
        return
    close = difflib.get_close_matches(name, sorted(SIGNALS), n=1, cutoff=0.6)
    yield (path, f"unknown signal {text!r}",
           f"did you mean {close[0]!r}?" if close else "write a signal name such as SIGTERM or SIGQUIT")


def _healthcheck(h: Healthcheck, path: KeyPath) -> Iterator[Found]:
    if h.disable:
        others = [k for k in ("test", "interval", "timeout", "retries", "start_period",
                              "start_interval") if getattr(h, k) is not None]
        if others:
            yield (path + ("disable",), f"disable = true and {', '.join(others)} contradict each other",
                   "remove disable to run the check, or remove " + ", ".join(others))
        return
    if h.test is not None:
        yield from _health_test(h.test, path + ("test",))
    for key in ("interval", "timeout", "start_period", "start_interval"):
        text = getattr(h, key)
        if text is not None:
            yield from _duration(text, path + (key,), minimum=10 ** 6 if key != "start_period" else 0)
    if h.retries is not None and h.retries < 0:
        yield path + ("retries",), f"retries = {h.retries} is negative", "write 0 or more; Docker's default is 3"


def _health_test(test: tuple[str, ...], path: KeyPath) -> Iterator[Found]:
    forms = ('write ["CMD", "program", "arg", ...], ["CMD-SHELL", "shell command"], '
             '["NONE"], or a string, which the shell runs')
    if not test:
        yield path, "the test is empty", forms
    elif test[0] == "NONE":
        if len(test) > 1:
            yield path, "[\"NONE\"] takes nothing after it", "write test = [\"NONE\"] to disable the image's check"
    elif test[0] == "CMD":
        if len(test) < 2 or not test[1]:
            yield path, "[\"CMD\"] names no program", forms
    elif test[0] == "CMD-SHELL":
        if len(test) != 2 or not test[1].strip():
            yield (path, "[\"CMD-SHELL\"] takes exactly one shell command",
                   'write ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]')
    else:
        yield path, f"the test starts with {test[0]!r}, not CMD, CMD-SHELL or NONE", forms


def _security_opt(opt: str, path: KeyPath) -> Iterator[Found]:
    if opt.replace(":", "=").strip().startswith("systempaths="):
        yield (path, f"{opt!r} is refused on a member: it unmasks /proc/sys, where a member "
               "could rewrite host-wide sysctls; only the helper writes sysctls, the group's "
               "namespaced ones", "remove it; set the group's sysctls with sysctls = { ... }")
    elif opt.startswith("seccomp") and not _SECURITY_OPT.fullmatch(opt):
        yield (path, f"{opt!r}: a seccomp profile given by file is read by the docker CLI, "
               "not by the engine", "write seccomp=unconfined, or the profile's JSON itself")
    elif not _SECURITY_OPT.fullmatch(opt):
        yield (path, f"unknown security option {opt!r}",
               "use no-new-privileges:true, apparmor=PROFILE, label=..., or seccomp=unconfined")
