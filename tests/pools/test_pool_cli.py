"""The pool stage through the CLI, as real subprocesses against the session sandbox: apply
creates the pool, `output` prints the active pool id, and after someone resized the pool
`plan` shows the drift and what apply will do (exit 2), and apply undoes it."""

from __future__ import annotations

from pathlib import Path

from azure.batch import models as bm

from batchimage.spec import load_spec
from tests.pipeline.test_quickstart import cli
from tests.pools.harness import PoolHarness


def test_plan_shows_drift_and_output_the_active_pool(
    pools: PoolHarness, sandbox_folder: Path
) -> None:
    spec = pools.spec("quickstart.yaml", name="pools-ubuntu")
    pool_id = load_spec(spec).pools[0].id
    state = pools.tmp / "cli-state.json"
    applied = cli(sandbox_folder, "apply", str(spec), "--yes", "--state", str(state))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    active = cli(
        sandbox_folder, "output", str(spec), f"pool.{pool_id}.retire.active_pool_id",
        "--state", str(state),
    )  # fmt: skip
    assert active.returncode == 0 and active.stdout.strip() == pool_id

    pools.batch.begin_resize_pool(
        pool_id, bm.BatchPoolResizeOptions(target_dedicated_nodes=4), polling_interval=0
    ).result()
    plan = cli(sandbox_folder, "plan", str(spec), "--state", str(state))
    assert plan.returncode == 2, plan.stdout + plan.stderr
    line = next(x for x in plan.stdout.splitlines() if f"pool.{pool_id} " in x)
    assert line.lstrip().startswith("~ update")
    assert "target dedicated nodes 4 -> 2; apply will update it in place" in line

    again = cli(sandbox_folder, "apply", str(spec), "--yes", "--state", str(state))
    assert again.returncode == 0, again.stdout + again.stderr
    assert pools.batch.get_pool(pool_id).target_dedicated_nodes == 2
    assert cli(sandbox_folder, "plan", str(spec), "--state", str(state)).returncode == 0
