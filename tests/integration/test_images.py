"""Images compared by identity, pull policies and `stackctl pull`, on the real engine.

No registry is reachable here: pulls fail, and the tests check that they fail clearly and
change nothing; "already present" is checked with images built locally."""

from __future__ import annotations

import io

import pytest

from support import BUSYBOX, PAUSE, SLEEPER, run_cli, spec_text

pytestmark = pytest.mark.engine


def _ids(client, stack: str) -> dict[str, tuple[str, str]]:
    """container name -> (container id, image id)."""
    return {c.name: (c.id, c.attrs["Image"])
            for c in client.containers.list(all=True, filters={"label": f"stackctl.stack={stack}"})}


def _remove_stack(client, stack: str) -> None:
    for c in client.containers.list(all=True, filters={"label": f"stackctl.stack={stack}"}):
        c.remove(force=True)


def test_a_retagged_image_replaces_exactly_the_containers_running_the_old_one(docker_client, stack_name, tmp_path):
    ref = f"stackctl-test/{stack_name}:1.4"
    docker_client.images.get(BUSYBOX).tag(ref)
    try:
        spec = tmp_path / "s.toml"
        spec.write_text(spec_text(stack_name, {
            "g": {"members": {"a": {**SLEEPER, "image": ref}, "b": {**SLEEPER, "image": ref},
                              "c": SLEEPER}},
            "h": {"members": {"d": SLEEPER}}}))
        assert run_cli("apply", str(spec), "--auto-approve").returncode == 0
        before = _ids(docker_client, stack_name)

        # Rebuilt under the same tag: another image, as a `docker build -t` or pull would do.
        new, _ = docker_client.images.build(
            fileobj=io.BytesIO(f"FROM {BUSYBOX}\nLABEL rebuilt={stack_name}\n".encode()),
            tag=ref, rm=True)
        old_short = before[f"{stack_name}-g-a"][1].split(":")[1][:8]
        new_short = new.id.split(":")[1][:8]
        plan = run_cli("plan", str(spec), "--detailed-exitcode")
        assert plan.returncode == 2, plan.stdout + plan.stderr
        reason = f"image {ref} now names {new_short} (running {old_short})"
        assert plan.stdout.count(reason) == 2, plan.stdout
        assert "-/+ member.g.a" in plan.stdout and "-/+ member.g.b" in plan.stdout
        assert f'~ image_id = "{old_short}" -> "{new_short}" # forces replacement' in plan.stdout
        assert "Plan: 2 to add, 0 to change, 2 to destroy." in plan.stdout

        applied = run_cli("apply", str(spec), "--auto-approve")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        after = _ids(docker_client, stack_name)
        for name in (f"{stack_name}-g-a", f"{stack_name}-g-b"):
            assert after[name][0] != before[name][0] and after[name][1] == new.id
        for name in (f"{stack_name}-g", f"{stack_name}-g-c", f"{stack_name}-h", f"{stack_name}-h-d"):
            assert after[name] == before[name], f"{name} runs the same image: untouched"
        assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0
    finally:
        _remove_stack(docker_client, stack_name)
        docker_client.images.remove(ref, force=True)


def test_pull_policy_never_refuses_a_missing_image_before_anything_changes(docker_client, stack_name, tmp_path):
    absent = f"stackctl-test/{stack_name}-absent:1"
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, {"g": {"members": {
        "ok": SLEEPER, "m": {**SLEEPER, "image": absent, "pull_policy": "never"}}}}))
    result = run_cli("apply", str(spec), "--auto-approve")
    assert result.returncode == 1
    assert f'{absent}: not on the engine, and pull_policy is "never"' in result.stderr
    assert "nothing was changed" in result.stderr
    assert _ids(docker_client, stack_name) == {}


def test_pull_policy_always_pulls_before_planning_and_stops_when_it_cannot(docker_client, stack_name, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, {"g": {"members": {
        "m": {**SLEEPER, "pull_policy": "always"}}}}))
    result = run_cli("apply", str(spec), "--auto-approve")
    assert result.returncode == 1
    assert f"{BUSYBOX}: failed: " in result.stdout, result.stdout
    assert f"pull_policy always: {BUSYBOX} could not be pulled, so nothing was changed" in result.stderr
    assert _ids(docker_client, stack_name) == {}


def test_stackctl_pull(docker_client, stack_name, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(stack_name, {"g": {"members": {
        "m": SLEEPER, "n": {**SLEEPER, "image": "stackctl-test/never:1", "pull_policy": "never"}}}}))
    missing = run_cli("pull", str(spec), "--policy", "missing")
    assert missing.returncode == 0, missing.stdout + missing.stderr
    assert f"{BUSYBOX}: already present, not pulled (--policy missing)" in missing.stdout
    assert "stackctl-test/never:1: not pulled (pull_policy never)" in missing.stdout

    every = run_cli("pull", str(spec))
    assert every.returncode == 1
    assert f"{BUSYBOX}: failed: " in every.stdout  # no registry is reachable from here
    assert every.stderr.startswith("Error: 2 of 2 image(s) could not be pulled")
    assert _ids(docker_client, stack_name) == {}


# ------------------------------------------------------------- with a registry on 127.0.0.1
def _forget(client, host: str, *refs: str) -> None:
    """Remove what these tests pulled: their references, and every digest reference of
    the test registry (a pull records one on the image, also on busybox itself)."""
    digests = [d for image in client.images.list() for d in image.attrs.get("RepoDigests") or []
               if d.startswith(host + "/")]
    for ref in [*refs, *digests]:
        try:
            client.images.remove(ref, force=True)
        except Exception:  # already gone
            pass


def test_a_digest_reference_is_pulled_runs_and_plans_no_changes(docker_client, stack_name, tmp_path):
    from registry import Registry

    with Registry() as registry:
        digest = registry.serve(docker_client, BUSYBOX, f"{stack_name}/app:1")
        ref = f"{registry.host}/{stack_name}/app@{digest}"
        try:
            spec = tmp_path / "s.toml"
            spec.write_text(spec_text(stack_name, {"g": {"members": {"m": {**SLEEPER, "image": ref}}}}))
            applied = run_cli("apply", str(spec), "--auto-approve")
            assert applied.returncode == 0, applied.stdout + applied.stderr
            assert any(r.startswith(f"GET /v2/{stack_name}/app/manifests/{digest}") or
                       r.startswith(f"HEAD /v2/{stack_name}/app/manifests/{digest}")
                       for r in registry.requests), "apply pulled the missing reference"
            c = docker_client.containers.get(f"{stack_name}-g-m")
            assert c.attrs["Config"]["Image"] == ref and c.status == "running"
            assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0

            pulled = run_cli("pull", str(spec))
            assert pulled.returncode == 1  # the owner's image has no registry to come from
            assert f"{ref}: pulled" in pulled.stdout
            assert "Error: 1 of 2 image(s) could not be pulled: " + PAUSE in pulled.stderr
        finally:
            _remove_stack(docker_client, stack_name)
            _forget(docker_client, registry.host, ref)


def test_pull_policy_always_sees_a_tag_that_moved_in_the_registry(docker_client, stack_name, tmp_path):
    from registry import Registry

    with Registry() as registry:
        registry.serve(docker_client, BUSYBOX, f"{stack_name}/app:1")
        ref = f"{registry.host}/{stack_name}/app:1"
        rebuilt = None
        try:
            spec = tmp_path / "s.toml"
            spec.write_text(spec_text(stack_name, {"g": {"members": {
                "m": {**SLEEPER, "image": ref, "pull_policy": "always"}, "other": SLEEPER}}}))
            applied = run_cli("apply", str(spec), "--auto-approve")
            assert applied.returncode == 0, applied.stdout + applied.stderr
            assert f"{ref}: pulled (pull_policy always)" in applied.stdout
            before = _ids(docker_client, stack_name)
            busybox_id = docker_client.images.get(BUSYBOX).id
            assert before[f"{stack_name}-g-m"][1] == busybox_id

            # The registry's tag moves on; the engine's copy of the tag does not (yet).
            rebuilt, _ = docker_client.images.build(
                fileobj=io.BytesIO(f"FROM {BUSYBOX}\nLABEL moved={stack_name}\n".encode()), rm=True)
            registry.serve(docker_client, rebuilt.id, f"{stack_name}/app:1")
            assert run_cli("plan", str(spec), "--detailed-exitcode").returncode == 0, \
                "plan reads, it never pulls"

            applied = run_cli("apply", str(spec), "--auto-approve")
            assert applied.returncode == 0, applied.stdout + applied.stderr
            reason = f"image {ref} now names {rebuilt.id[7:15]} (running {busybox_id[7:15]})"
            assert reason in applied.stdout, applied.stdout
            after = _ids(docker_client, stack_name)
            assert after[f"{stack_name}-g-m"][1] == rebuilt.id
            assert after[f"{stack_name}-g-other"] == before[f"{stack_name}-g-other"]
        finally:
            _remove_stack(docker_client, stack_name)
            _forget(docker_client, registry.host, ref, *([rebuilt.id] if rebuilt else []))
