"""A run whose blob lease is broken under it (`force-unlock --force`) stops calling Azure
at once, says so, saves its progress, and the next apply resumes. Real processes against
the sandbox; the build VM is made to take far longer than the test, so the run would wait
for it forever if it did not stop by itself."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from batchimage.core.ownership import Marks
from batchimage.sandbox.config import DEFAULT_DURATIONS
from batchimage.sandbox.connection import Connection
from tests.engine.sandbox_cli import blob_state, ci_env, cli, start_json
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.engine.test_process import events, wait_for_event
from tests.pools.harness import PoolHarness


def test_a_run_whose_lease_is_broken_stops_at_once_and_the_next_apply_resumes(
    pools: PoolHarness,  # noqa: F811
    sandbox: Connection,
    sandbox_folder: Path,
) -> None:
    spec = pools.spec("quickstart.yaml", blob_state(sandbox.storage_account, lease_s=15))
    env = ci_env(sandbox_folder)
    before = DEFAULT_DURATIONS["vm.create"]
    pools.admin.configure(durations={"vm.create": 10**6})  # not done until the clock moves
    first = start_json(spec.parent, env, "apply", spec.name, "--yes")
    try:
        seen = wait_for_event(first, "step_waiting", "build.vm")
        refused = cli(spec.parent, env, "force-unlock", spec.name, "--yes")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert f"pid {first.pid} on" in refused.stderr and "still running" in refused.stderr

        forced = cli(spec.parent, env, "force-unlock", spec.name, "--yes", "--force")
        assert forced.returncode == 0, forced.stderr
        assert "warning: breaking the lock of `batchimage apply`" in forced.stderr
        assert "broke the lease" in forced.stdout
        _, stderr = first.communicate(timeout=120)  # it stops by itself
    finally:
        pools.admin.configure(durations={"vm.create": before})
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 3, stderr
    said = seen + events(stderr)
    assert [e["result"] for e in said if e["event"] == "run_finished"] == ["interrupted"]
    error = said[-1]  # the last line: the command's error, as JSON like every line
    assert error["event"] == "error" and error["exit_code"] == 3
    assert error["message"].startswith("lost the lock on state")
    assert "it was broken" in error["message"]
    assert "stopped calling Azure at once" in error["message"]
    group = yaml.safe_load(spec.read_text())["resource_group"]
    vms = pools.clients.compute.virtual_machines.list(group)
    mine = [vm for vm in vms if (vm.tags or {}).get(Marks.Tag.PIPELINE) == spec.stem]
    assert [vm.provisioning_state for vm in mine] == ["Creating"]  # the run did not wait

    status = json.loads(cli(spec.parent, env, "status", spec.name, "--format", "json").stdout)
    assert status["locked_by"] is None
    assert [r["result"] for r in status["runs"]] == ["interrupted"]  # its progress was saved
    assert status["steps"]["build.vm"]["status"] == "in_flight"

    pools.admin.advance(10**6)  # the VM the stopped run asked for is made
    again = cli(spec.parent, env, "apply", spec.name, "--yes")
    assert again.returncode == 0, again.stderr
    assert cli(spec.parent, env, "destroy", spec.name, "--yes").returncode == 0
