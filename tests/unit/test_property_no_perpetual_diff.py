"""Property: a stack that was just applied plans as all no-op (no perpetual diff).

Hypothesis generates valid specs (names, ports without host-port clashes, namespaced
sysctls written as integers or as strings with odd whitespace, environments, commands,
volumes, restart policies, depends_on DAGs), writes them as TOML with a small emitter,
loads them with ``stackctl.spec.load``, "applies" them by building the state the engine
would report (labels carry the config and its hash; live sysctls as the kernel prints them,
normalized like the engine adapter does), and asserts the plan against that state is empty.
The same spec written with every table and key in another order must hash identically.
"""

from __future__ import annotations

import json
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackfix import converged
from stackctl.plan import make_plan
from stackctl.resources import desired
from stackctl.spec import load

# ------------------------------------------------------------------- a tiny TOML emitter
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _str(s: str, interpolated: bool = True) -> str:
    """A TOML basic string. ``$`` is doubled in values: the loader reads ``$$`` as ``$``."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "$" and interpolated:
            out.append("$$")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _key(k: str) -> str:
    return k if _BARE.match(k) else _str(k, interpolated=False)


def _value(v: Any, rng: random.Random) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x, rng) for x in v) + "]"
    if isinstance(v, dict):
        items = list(v.items())
        rng.shuffle(items)
        return "{ " + ", ".join(f"{_key(k)} = {_value(x, rng)}" for k, x in items) + " }"
    raise TypeError(type(v))


class Inline(dict):
    """A table the emitter may write inline (``{ a = 1 }``) or as a ``[sub.table]``."""


def emit(doc: dict[str, Any], rng: random.Random) -> str:
    """``doc`` as TOML; ``rng`` decides the order of tables and keys, and inline or not."""
    lines: list[str] = []

    def table(path: list[str], t: dict[str, Any]) -> None:
        scalars, subtables = [], []
        items = list(t.items())
        rng.shuffle(items)
        for k, v in items:
            if isinstance(v, Inline) and (not v or rng.random() < 0.5):
                scalars.append((k, v))  # an empty table is always written inline
            elif isinstance(v, dict):
                subtables.append((k, v))
            else:
                scalars.append((k, v))
        if path and (scalars or not subtables):
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for k, v in scalars:
            lines.append(f"{_key(k)} = {_value(v, rng)}")
        if scalars:
            lines.append("")
        for k, v in subtables:
            table(path + [k], v)

    table([], doc)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ strategies
NAME = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
IMAGE = st.sampled_from(["pause:3.10", "busybox:1.36", "nginx:1.27", "app", "registry.local:5000/team/app:2.1"])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SEP = st.sampled_from([" ", "\t", "  ", " \t", "\t\t"])


@st.composite
def multi(draw: Any, n: int, lo: int = 0, hi: int = 2**31 - 1) -> str:
    nums = [str(draw(st.integers(lo, hi))) for _ in range(n)]
    text = nums[0]
    for x in nums[1:]:
        text += draw(SEP) + x
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " ", "\n"]))


def single(lo: int, hi: int) -> st.SearchStrategy[Any]:
    n = st.integers(lo, hi)
    return st.one_of(n, n.map(str), n.map(lambda x: f" {x}\t"))


SYSCTLS: dict[str, st.SearchStrategy[Any]] = {
    "net.core.somaxconn": single(1, 65535),
    "net.ipv4.tcp_syncookies": single(0, 2),
    "net.ipv4.ip_unprivileged_port_start": single(0, 65535),
    "net.ipv4.ip_local_port_range": multi(2, 1024, 65535),
    "net.ipv4.tcp_rmem": multi(3, 4096, 2**30),
    "net.ipv4.ping_group_range": multi(2, 0, 2**31 - 1),
    "kernel.shmmax": single(0, 2**62),
    "kernel.shm_rmid_forced": single(0, 1),
    "kernel.msgmax": single(1, 2**31 - 1),
    "kernel.sem": multi(4, 0, 32000),
    "fs.mqueue.msg_max": single(1, 65536),
}

# No process environment holds a NUL, so validation refuses one in an env value.
ENV_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                   max_size=12)
ENV_VALUE = st.one_of(ENV_TEXT, INT64, st.booleans(),
                      st.floats(allow_nan=False, allow_infinity=False, width=64))


@st.composite
def member_tables(draw: Any, names: list[str]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for i, name in enumerate(names):
        m: dict[str, Any] = {"image": draw(IMAGE)}
        if draw(st.booleans()):
            m["command"] = draw(st.lists(TEXT, max_size=4))
        if draw(st.booleans()):
            m["entrypoint"] = draw(st.lists(TEXT, min_size=1, max_size=2))
        if draw(st.booleans()):
            m["environment"] = Inline(draw(st.dictionaries(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), ENV_VALUE, max_size=4)))
        if draw(st.booleans()):
            n = draw(st.integers(1, 3))
            m["volumes"] = [
                f"{draw(st.sampled_from(['/srv/d' + str(j), 'vol' + str(j), '/var/lib/x' + str(j)]))}"
                f":/data{j}{draw(st.sampled_from(['', ':ro', ':rw', ':ro,z']))}"
                for j in range(n)
            ]
        if draw(st.booleans()):
            m["restart"] = draw(st.sampled_from(["no", "always", "unless-stopped", "on-failure"]))
        if draw(st.booleans()):
            m["init"] = draw(st.booleans())
        m.update(draw(container_options()))
        earlier = names[:i]
        if earlier and draw(st.booleans()):
            deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=len(earlier)))
            if deps or draw(st.booleans()):
                m["depends_on"] = deps
        members[name] = m
    return members


DURATION = st.sampled_from(["30s", "1m30s", "90s", "500ms", "2h", "1.5s", "0s"])
SIZE = st.one_of(st.sampled_from(["64m", "64M", "65536k", "1g", "1024m", "512mb", "300000000"]),
                 st.integers(6 * 2**20, 2**34))
CAPS = st.sampled_from(["NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "SYS_PTRACE", "CHOWN",
                        "cap_chown", "NET_BIND_SERVICE"])
# Env files every loaded spec finds next to it (written by _load).
ENV_FILES = {"a.env": "# a comment\nA=1\nexport B='x y' # not a comment? it is quoted\n",
             "b.env": 'C="multi word"\nA=2\n'}


@st.composite
def container_options(draw: Any) -> dict[str, Any]:
    """Every member option, each present or not, in the spellings Compose users write."""
    options: dict[str, st.SearchStrategy[Any]] = {
        "user": st.sampled_from(["101", "101:101", "app", "app:staff", "0:0"]),
        "working_dir": st.sampled_from(["/app", "/srv/www", "/"]),
        "read_only": st.booleans(),
        "tmpfs": st.lists(st.sampled_from(["/run", "/tmp:size=64m", "/cache:size=1m,mode=1777"]),
                          unique=True, max_size=3),
        "cap_add": st.lists(CAPS, max_size=3),
        "cap_drop": st.lists(st.one_of(CAPS, st.just("ALL")), max_size=3),
        "devices": st.lists(st.sampled_from(["/dev/net/tun", "/dev/fuse:/dev/fuse:rwm",
                                             "/dev/null:/dev/mynull"]), unique=True, max_size=2),
        "ulimits": st.dictionaries(st.sampled_from(["nofile", "nproc", "core", "memlock"]), st.one_of(
            st.integers(0, 2**20), st.integers(0, 2**20).map(lambda n: Inline({"soft": n, "hard": n + 1}))),
            max_size=3).map(Inline),
        "mem_limit": SIZE,
        "cpus": st.one_of(st.integers(1, 2), st.sampled_from([0.5, 0.25, 1.5])),
        "pids_limit": st.one_of(st.integers(1, 4096), st.just(-1)),
        "labels": st.dictionaries(st.sampled_from(["com.example.team", "org.opencontainers.x", "tier"]),
                                  TEXT, max_size=2).map(Inline),
        "stop_signal": st.sampled_from(["SIGQUIT", "quit", "SIGUSR1", "TERM"]),
        "stop_grace_period": DURATION,
        "healthcheck": st.one_of(
            st.builds(lambda t, i, r: Inline({"test": t, "interval": i, "retries": r}),
                      st.sampled_from([["CMD", "true"], "wget -qO- http://127.0.0.1/", ["CMD-SHELL", "true"], ["NONE"]]),
                      DURATION, st.integers(1, 5)),
            st.just(Inline({"disable": True}))),
        "logging": st.just(Inline({"driver": "json-file", "options": Inline({"max-size": "10m"})})),
        "security_opt": st.lists(st.sampled_from(["no-new-privileges:true", "apparmor=unconfined",
                                                  "label=disable"]), unique=True, max_size=2),
        "pull_policy": st.sampled_from(["missing", "always", "never"]),
        "env_file": st.one_of(st.sampled_from(sorted(ENV_FILES)),
                              st.lists(st.sampled_from(sorted(ENV_FILES)), min_size=1, max_size=2, unique=True)),
    }
    return {k: draw(v) for k, v in options.items() if draw(st.integers(0, 3)) == 0}


@st.composite
def port_text(draw: Any, host_port: int) -> str:
    container = draw(st.integers(1, 65535))
    proto = draw(st.sampled_from(["tcp", "udp", "sctp"]))
    suffix = f"/{proto}" if proto != "tcp" or draw(st.booleans()) else ""
    ip = draw(st.sampled_from(["", "127.0.0.1:", "0.0.0.0:", "[::1]:"]))
    return f"{ip}{host_port}:{container}{suffix}"


@st.composite
def specs(draw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"stack": {"name": draw(st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True))}}
    if draw(st.booleans()):
        defaults: dict[str, Any] = {}
        if draw(st.booleans()):
            defaults["owner_image"] = draw(IMAGE)
        if draw(st.booleans()):
            defaults["owner_command"] = draw(st.lists(TEXT, max_size=3))
        if draw(st.booleans()):
            defaults["helper_image"] = draw(IMAGE)
        doc["defaults"] = defaults
    # Stack networks and volumes: declared, external, or with settings.
    nets: list[str] = []
    if draw(st.booleans()):
        networks: dict[str, Any] = {}
        for i, n in enumerate(draw(st.lists(st.sampled_from(["back", "front", "mid"]), unique=True, max_size=3))):
            if draw(st.booleans()):
                networks[n] = Inline({"external": True, "name": f"ext-{n}"})
            else:
                t: dict[str, Any] = {}
                if draw(st.booleans()):
                    t["internal"] = draw(st.booleans())
                if draw(st.booleans()):
                    t["subnet"] = draw(st.sampled_from([f"10.{40 + i}.0.0/24", f"fd00:{i}::/64"]))
                networks[n] = Inline(t)
            nets.append(n)
        doc["networks"] = networks
    volumes: dict[str, Any] = {}
    for j in range(3):  # the members' strategy mounts vol0..vol2
        v: dict[str, Any] = {}
        if draw(st.booleans()):
            v = {"external": True, "name": f"ext-vol{j}"}
        else:
            if draw(st.booleans()):
                v["driver_opts"] = Inline({"type": "tmpfs", "device": "tmpfs"})
            if draw(st.booleans()):
                v["labels"] = Inline({"com.example.backup": draw(TEXT)})
        volumes[f"vol{j}"] = Inline(v)
    doc["volumes"] = volumes
    gnames = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    host_ports = draw(st.lists(st.integers(1, 65535), unique=True, max_size=3 * len(gnames)))
    groups: dict[str, Any] = {}
    for i, g in enumerate(gnames):
        table: dict[str, Any] = {}
        mine = host_ports[i::len(gnames)]
        if mine or draw(st.booleans()):
            table["ports"] = [draw(port_text(p)) for p in mine]
        keys = draw(st.lists(st.sampled_from(sorted(SYSCTLS)), unique=True, max_size=5))
        if keys or draw(st.booleans()):
            table["sysctls"] = Inline({k: draw(SYSCTLS[k]) for k in keys})
        if draw(st.booleans()):
            table["owner_image"] = draw(IMAGE)
        if draw(st.booleans()):
            table["owner_command"] = draw(st.lists(TEXT, max_size=3))
        if draw(st.booleans()):
            table["helper_image"] = draw(IMAGE)
        if draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(["default"] + nets), unique=True, max_size=3))
            if table.get("ports") and chosen and "default" not in chosen:
                chosen = ["default", *chosen]  # ports need a network with a route out
            if chosen or not table.get("ports"):
                table["networks"] = chosen
        if i and draw(st.booleans()):
            table["depends_on"] = draw(st.lists(st.sampled_from(gnames[:i]), unique=True, max_size=i))
        if draw(st.booleans()):
            table["hostname"] = draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True))
        if draw(st.booleans()):
            table["dns"] = draw(st.lists(st.sampled_from(["1.1.1.1", "10.0.0.2", "2606:4700::1111"]), max_size=2))
        if draw(st.booleans()):
            table["dns_search"] = draw(st.lists(st.sampled_from(["example.internal", "corp"]), max_size=2))
        if draw(st.booleans()):
            table["dns_opt"] = draw(st.lists(st.sampled_from(["ndots:2", "timeout:1"]), max_size=2))
        if draw(st.booleans()):
            table["extra_hosts"] = draw(st.lists(st.sampled_from(
                ["db.legacy:10.0.0.5", "v6:[::1]", "gw:host-gateway"]), unique=True, max_size=3))
        if draw(st.booleans()):
            table["shm_size"] = draw(st.one_of(st.sampled_from(["64m", "1g", "512k", "1.5m"]),
                                               st.integers(1, 2**31)))
        mnames = draw(st.lists(NAME, max_size=4, unique=True))
        if mnames:
            table["members"] = draw(member_tables(mnames))
        groups[g] = table
    doc["groups"] = groups
    return doc


# ----------------------------------------------------------------------------- tests
def _load(text: str) -> Any:
    return _load_spec(text).stack


def _load_spec(text: str) -> Any:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "stack.toml"
        f.write_text(text, encoding="utf-8")
        for name, content in ENV_FILES.items():
            (Path(d) / name).write_text(content)
        return load(f, env={})


def _env_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=specs(), seed_a=st.integers(0, 2**32), seed_b=st.integers(0, 2**32))
def test_applied_stack_plans_no_changes(doc: dict[str, Any], seed_a: int, seed_b: int) -> None:
    text_a = emit(doc, random.Random(seed_a))
    loaded = _load_spec(text_a)
    stack = loaded.stack

    # The loader read back what was written ($ escapes, control characters, numbers).
    for g, table in doc["groups"].items():
        for m, mt in table.get("members", {}).items():
            member = stack.groups[g].members[m]
            assert member.environment == {k: _env_text(v) for k, v in mt.get("environment", {}).items()}, text_a
            assert member.command == (tuple(mt["command"]) if "command" in mt else None)
            assert member.entrypoint == (tuple(mt["entrypoint"]) if "entrypoint" in mt else None)

    want = desired(stack, loaded.env_files)
    observed = converged(want, stack=stack.name)
    plan = make_plan(want, observed)
    assert plan.summary.empty, [(c.address, c.action.value, c.reason) for c in plan.actionable]
    assert not plan.actionable

    # Written in another order (tables, keys, inline or not), the spec is the same stack:
    # identical resources and config hashes, and still nothing to do.
    text_b = emit(doc, random.Random(seed_b))
    loaded_b = _load_spec(text_b)
    want_b = desired(loaded_b.stack, loaded_b.env_files)
    assert [(r.address, r.config_hash) for r in want_b] == [(r.address, r.config_hash) for r in want]
    assert [r.config for r in want_b] == [r.config for r in want]
    assert make_plan(want_b, observed).summary.empty


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=specs(), seed=st.integers(0, 2**32))
def test_config_labels_round_trip(doc: dict[str, Any], seed: int) -> None:
    """What the labels carry reads back equal: the config label is JSON of the config and
    the hash label hashes it, whatever the spec's values are."""
    loaded = _load_spec(emit(doc, random.Random(seed)))
    stack = loaded.stack
    for r in desired(stack, loaded.env_files):
        labels = r.labels(stack.name)
        assert json.loads(labels["stackctl.config"]) == r.config
        assert labels["stackctl.config-hash"] == r.config_hash
        assert all(isinstance(v, str) for v in labels.values())


def test_emitter_escapes_what_toml_and_interpolation_need() -> None:
    doc = {"stack": {"name": "s"}, "groups": {"g": {"members": {"m": {
        "image": "app", "command": ["a\"b", "c\\d", "$HOME", "${X}", "\x00\x7f\n", "é✓"]}}}}}
    stack = _load(emit(doc, random.Random(0)))
    assert stack.groups["g"].members["m"].command == ("a\"b", "c\\d", "$HOME", "${X}", "\x00\x7f\n", "é✓")


# What the kernel prints back for integer sysctls written as non-canonical text: it parses
# them with base 0 (kernel/sysctl.c proc_get_long -> strtoul_lenient(p, &p, 0, val)), so
# "01024" is octal and "0x400" is hex, and it always prints plain decimal.
KERNEL_ECHO = {"01024": "532", "0x400": "1024"}


@pytest.mark.parametrize("text", ["01024", "0x400"])
def test_non_canonical_integer_text_is_refused_or_converges(text: str) -> None:
    """``"net.core.somaxconn" = "01024"`` is accepted by the spec, written by the helper,
    and read back as ``532``: the plan then shows an update on every run (and apply's
    read-back check fails). Either validation refuses such a value, or the plan is empty
    once it was applied."""
    from stackctl.errors import SpecError

    doc = {"stack": {"name": "s"}, "groups": {"g": {"sysctls": Inline({"net.core.somaxconn": text})}}}
    try:
        stack = _load(emit(doc, random.Random(0)))
    except SpecError:
        return
    want = desired(stack)
    observed = converged(want, stack="s")
    observed = type(observed)(stack="s", containers=observed.containers,
                              sysctls={"g": {"net.core.somaxconn": KERNEL_ECHO[text]}})
    plan = make_plan(want, observed)
    assert plan.summary.empty, [(c.address, c.reason, c.attributes) for c in plan.actionable]
