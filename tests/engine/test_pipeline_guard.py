"""One run at a time per pipeline, whatever state file each run uses: the name lock on
this machine and the run marker on the pipeline's resource group, through the real CLI
and the real SDK against the sandbox."""

from __future__ import annotations

import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from batchimage.azure.clients import AzureClients
from batchimage.azure.run_marker import read_marker, write_marker
from batchimage.core.errors import StateLockedError
from batchimage.core.liveness import this_host
from batchimage.core.ownership import Marks
from batchimage.pipeline_guard import PipelineGuard, RunMarker
from batchimage.sandbox.config import DEFAULT_DURATIONS
from batchimage.sandbox.connection import Connection
from batchimage.state import LockHolder, utcnow
from tests.engine.sandbox_cli import ci_env, cli, start_json
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.engine.test_process import wait_for_event
from tests.pools.harness import PoolHarness
from tests.sandbox.conftest import clients  # noqa: F401

pytestmark = pytest.mark.long  # 20 s or more: scheduled first


def marker(pid: int, host: str, *, minutes: float = 5) -> str:
    """A marker as another run would have set it."""
    return RunMarker(
        pid=pid,
        host=host,
        user="ana",
        command="apply",
        started_at=utcnow() - timedelta(minutes=1),
        until=utcnow() + timedelta(minutes=minutes),
    ).model_dump_json()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def group(clients: AzureClients) -> str:  # noqa: F811
    name = f"guard-{uuid.uuid4().hex[:8]}"
    clients.resource.resource_groups.create_or_update(name, {"location": "eastus"})
    return name


def test_a_run_taken_over_is_told_and_leaves_the_others_marker(
    clients: AzureClients,  # noqa: F811
    group: str,
) -> None:
    lost: list[str] = []
    spec = SimpleNamespace(name="demo", resource_group=group)
    guard = PipelineGuard(spec, LockHolder(command="apply"))
    clients.resource.resource_groups.update(group, {"tags": {"owner": "ana"}})
    guard.claim(clients, lost.append)
    try:
        exists, value = read_marker(clients, group)
        mine = RunMarker.model_validate_json(value or "")
        assert exists and mine.command == "apply" and mine.host == this_host()
        assert clients.resource.resource_groups.get(group).tags["owner"] == "ana"  # kept
        guard.tick()  # renewed: still ours, nothing said
        assert lost == []

        other = marker(4242, "build-agent-7")
        write_marker(clients, group, other)  # another machine's run, written over ours
        guard.tick()
        assert len(lost) == 1 and "took over" in lost[0]
        assert "pid 4242 on build-agent-7" in lost[0]
    finally:
        guard.release()
    assert read_marker(clients, group) == (True, other)  # not ours to remove

    with pytest.raises(StateLockedError, match="pid 4242 on build-agent-7"):
        PipelineGuard(spec, LockHolder(command="apply")).check(clients)
    write_marker(clients, group, marker(4242, "build-agent-7", minutes=-1))  # expired
    PipelineGuard(spec, LockHolder(command="apply")).check(clients)
    write_marker(clients, group, marker(dead_pid(), this_host()))  # this host, process gone
    PipelineGuard(spec, LockHolder(command="apply")).check(clients)


def test_a_marker_from_another_machine_stops_apply_before_any_write(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    spec = pools.spec("quickstart.yaml")
    group = yaml.safe_load(spec.read_text())["resource_group"]
    env = ci_env(sandbox_folder)
    write_marker(pools.clients, group, marker(4242, "build-agent-7"))
    try:
        pools.admin.reset_counters()
        refused = cli(spec.parent, env, "apply", spec.name, "--yes")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "`batchimage apply` (pid 4242 on build-agent-7, user ana" in refused.stderr
        assert f"resource group {group}" in refused.stderr
        assert pools.admin.counters()["writes"] == 0
        assert "Apply these changes" not in refused.stdout + refused.stderr  # no plan shown
        forced = cli(spec.parent, env, "force-unlock", spec.name, "--yes", "--force")
        assert forced.returncode == 0, forced.stderr
        assert "removed the run marker of `batchimage apply` (pid 4242 on build-agent-7" in (
            forced.stdout
        )
        assert read_marker(pools.clients, group) == (True, None)

        # A marker left by a run of this machine whose process is gone does not count.
        write_marker(pools.clients, group, marker(dead_pid(), this_host()))
        pools.admin.reset_counters()
        applied = cli(spec.parent, env, "apply", spec.name, "--yes")
        assert applied.returncode == 0, applied.stderr
        ops = pools.admin.counters()["operations"]
        assert ops.get("ResourceGroups_Update") == 2  # marked, then unmarked
        assert Marks.Tag.ACTIVE_RUN not in (
            pools.clients.resource.resource_groups.get(group).tags or {}
        )

        pools.admin.reset_counters()
        again = cli(spec.parent, env, "apply", spec.name, "--yes")  # nothing to change
        assert again.returncode == 0, again.stderr
        assert pools.admin.counters()["writes"] == 0  # and no marker either
    finally:
        write_marker(pools.clients, group, None)
        cli(spec.parent, env, "destroy", spec.name, "--yes")


def test_two_applies_with_different_state_files_one_runs_the_other_is_named(
    pools: PoolHarness,  # noqa: F811
    sandbox: Connection,
    sandbox_folder: Path,
) -> None:
    spec = pools.spec("quickstart.yaml")
    env = ci_env(sandbox_folder)
    pools.admin.configure(durations={"vm.create": 10**6})  # the first waits on its VM
    first = start_json(spec.parent, env, "apply", spec.name, "--yes")
    try:
        wait_for_event(first, "step_waiting", "build.vm")
        other_state = spec.parent / "elsewhere.json"
        second = cli(spec.parent, env, "apply", spec.name, "--yes", "--state", str(other_state))
        assert second.returncode == 3, second.stdout + second.stderr
        assert f"pipeline {spec.stem} is being changed by `batchimage apply` (pid {first.pid}" in (
            second.stderr
        )
        assert "with state" in second.stderr and f"{spec.stem}.json" in second.stderr
        assert not other_state.exists()  # nothing recorded, nothing planned
        assert first.poll() is None
    finally:
        pools.admin.configure(durations={"vm.create": DEFAULT_DURATIONS["vm.create"]})
    pools.admin.advance(10**6)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert cli(spec.parent, env, "destroy", spec.name, "--yes").returncode == 0
