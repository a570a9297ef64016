"""When a pool does not come up, apply fails with what happened and what to do: resize
errors by code (quota: which quota and the numbers; allocation failure: another size or
region), failed start tasks with the tail of their stdout/stderr, unusable nodes with
their errors and the likely cause. Through the engine and the real SDKs, in the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import models as bm

from batchimage.errors import BatchImageError
from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness
from tests.sandbox.batch_support import pool_options

SHARED = "pools-ubuntu"


def setting(**values: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["pools"][0].update(values)

    return edit


def failure(pools: PoolHarness, spec: Any) -> str:
    with pytest.raises(BatchImageError) as failed:
        pools.apply(spec)
    return str(failed.value)


def test_subscription_quota_names_the_quota_and_the_numbers(
    pools: PoolHarness, batch_rules: Callable[..., None]
) -> None:
    batch_rules(core_quotas={"sandboxbatch": {"dedicated": 2}})
    spec = pools.spec("quickstart.yaml", name=SHARED)
    message = failure(pools, spec)
    assert "resize error AllocationFailed" in message
    assert "Total Regional Cores" in message and "Current Limit: 2" in message
    assert "request a quota increase" in message and "region eastus" in message


def test_allocation_failure_suggests_another_size_or_region(
    pools: PoolHarness, batch_rules: Callable[..., None]
) -> None:
    spec = pools.spec("quickstart.yaml", name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    batch_rules(
        allocation_failures=[
            {"pool": f"^{pool_id}$", "nodes": "dedicated", "reason": "No capacity for size."}
        ]
    )
    message = failure(pools, spec)
    assert "resize error AllocationFailed" in message and "No capacity for size." in message
    assert "try another vm_size, another region" in message


def test_start_task_failure_shows_the_log_tail(
    pools: PoolHarness, batch_rules: Callable[..., None]
) -> None:
    lines = "".join(f"step {n}\n" for n in range(1, 31))
    batch_rules(
        start_task_rules=[
            {
                "match": "install-deps",
                "exit_code": 7,
                "stdout": lines,
                "stderr": "E: Unable to locate package foo\n",
            }
        ]
    )
    task = {"command_line": "/bin/sh -c 'install-deps'", "max_task_retry_count": 1}
    spec = pools.spec("quickstart.yaml", setting(start_task=task), name=SHARED)
    message = failure(pools, spec)
    assert "2 node(s) failed their start task" in message
    assert "start task exit code 7 (FailureExitCode" in message and "after 1 retry" in message
    assert "E: Unable to locate package foo" in message
    assert "| step 30" in message and "| step 11" in message
    assert "| step 10\n" not in message  # only the last 20 lines
    assert "fix the start task" in message
    # Plan says the pool failed and that apply will retry.
    pool_id = load_spec(spec).pools[0].id
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "update" and "failed" in change.reason


def test_unusable_nodes_name_the_likely_cause(pools: PoolHarness) -> None:
    def skip_deprovision(data: dict[str, Any]) -> None:
        data["image"]["generalize"] = {"command": "echo not deprovisioned"}

    spec = pools.spec("quickstart.yaml", skip_deprovision)
    message = failure(pools, spec)
    assert "2 node(s) are unusable" in message
    assert "ImageNotGeneralized" in message
    assert "likely cause: the image was not generalized" in message


def test_node_agent_mismatch_fails_before_any_pool(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml", setting(node_agent_sku="batch.node.el 9"), name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    with pytest.raises(BatchImageError) as failed:
        pools.apply(spec)
    assert "batch.node.el 9" in str(failed.value)
    assert pools.pool_ids(pool_id) == []


def test_verify_reports_a_pool_on_another_image(pools: PoolHarness) -> None:
    """A pool someone made at the spec's id on a Marketplace image is replaced, not adopted."""
    spec = pools.spec("quickstart.yaml", setting(rollout="blue_green"), name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    pools.batch.create_pool(pool_options(pool_id, target_dedicated_nodes=0))
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "replace" and "image" in change.reason
    pools.apply(spec)
    ids = pools.pool_ids(pool_id)
    assert ids == sorted([pool_id, f"{pool_id}-v1-0-0"])  # someone else's pool is kept
    kept = pools.outputs(spec, f"pool.{pool_id}.retire")
    assert kept["active_pool_id"] == f"{pool_id}-v1-0-0" and kept["kept"] == [pool_id]
    image = bm.BatchVmImageReference  # the kept pool still runs its Marketplace image
    live = pools.batch.get_pool(pool_id).virtual_machine_configuration.image_reference
    assert isinstance(live, image) and live.offer == "ubuntu-24_04-lts"
