"""Two `batchimage apply --yes` processes at once on one spec whose state lives in a blob
(Azurite, through the sandbox): exactly one runs to success, the other exits 3 at once,
naming the lease holder. The build VM takes simulated time that passes only when the test
moves the clock, so the first run is inside its lease, waiting, while the second tries."""

from __future__ import annotations

import json
from pathlib import Path

from batchimage.sandbox.config import DEFAULT_DURATIONS
from batchimage.sandbox.connection import Connection
from tests.engine.sandbox_cli import blob_state, ci_env, cli, start_json
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.engine.test_process import wait_for_event
from tests.pools.harness import PoolHarness
from tests.sandbox.batch_support import HELD


def test_two_applies_on_blob_state_one_runs_the_other_fails_fast(
    pools: PoolHarness,  # noqa: F811
    sandbox: Connection,
    sandbox_folder: Path,
) -> None:
    spec = pools.spec("quickstart.yaml", blob_state(sandbox.storage_account))
    env = ci_env(sandbox_folder)
    pools.admin.configure(durations={"vm.create": HELD})  # not done until the clock moves
    first = start_json(spec.parent, env, "apply", spec.name, "--yes")
    try:
        wait_for_event(first, "step_waiting", "build.vm")
        second = cli(spec.parent, env, "apply", spec.name, "--yes")
        assert first.poll() is None, "the first apply ended before the second tried"
        assert second.returncode == 3, second.stdout + second.stderr
        assert f"locked by `batchimage apply` (pid {first.pid} on" in second.stderr
        pools.admin.advance(HELD)  # the first run's VM is made; it goes on to the end
        _, stderr = first.communicate(timeout=120)
    finally:
        pools.admin.configure(durations={"vm.create": DEFAULT_DURATIONS["vm.create"]})
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr

    status = json.loads(cli(spec.parent, env, "status", spec.name, "--format", "json").stdout)
    assert status["state"].endswith(f"/pipelines/{spec.stem}.json")
    assert [r["result"] for r in status["runs"]] == ["ok"]  # one run, and it succeeded
    assert status["locked_by"] is None
    assert cli(spec.parent, env, "destroy", spec.name, "--yes").returncode == 0
