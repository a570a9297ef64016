"""A pool's life through the engine and the real BatchClient against the sandbox: created on
the captured image and verified; re-apply makes zero writes; drift (resized, start task
changed, deleted) shown by plan and undone by apply; updates in place (counts, start task,
metadata, autoscale formula evaluated in plan), a pending resize stopped first.

Tests that share SHARED build its Ubuntu image once (the image steps adopt it after)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from azure.batch import models as bm

from batchimage.core.ownership import Marks
from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness

SHARED = "pools-ubuntu"


def first_pool(pools: PoolHarness, spec: Any) -> str:
    return str(load_spec(spec).pools[0].id)


def meta(pool: bm.BatchPool) -> dict[str, str]:
    return {m.name: m.value for m in pool.metadata or []}


def test_quickstart_pool_is_created_verified_and_reapplied_without_writes(
    pools: PoolHarness,
) -> None:
    spec = pools.spec("quickstart.yaml")
    pool_id = first_pool(pools, spec)
    result = pools.apply(spec)
    assert pools.change(result.changes, f"pool.{pool_id}").action == "created"

    live = pools.batch.get_pool(pool_id)
    version = pools.outputs(spec, "capture.version")
    image = live.virtual_machine_configuration.image_reference.virtual_machine_image_id
    assert image == version["version_id"]  # the classic guide's Properties check
    assert live.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 24.04"
    nodes = list(pools.batch.list_nodes(pool_id))
    assert len(nodes) == 2 and {n.state for n in nodes} == {"idle"}  # wait_for: idle
    assert all(n.start_task_info.exit_code == 0 for n in nodes)
    marks = meta(live)
    assert marks[Marks.Pool.PIPELINE] == load_spec(spec).name and marks[Marks.Pool.POOL] == pool_id
    assert marks[Marks.Pool.IMAGE_VERSION] == version["version"] == "1.0.0"
    assert marks[Marks.Pool.RUN] == pools.state(spec).steps[f"pool.{pool_id}"].run_id
    assert marks["project"] == "batchimage-quickstart"  # the spec's tags, as metadata

    outputs = pools.outputs(spec, f"pool.{pool_id}")
    assert outputs["pool_id"] == pool_id and outputs["node_agent_sku"] == "batch.node.ubuntu 24.04"
    assert pools.outputs(spec, f"pool.{pool_id}.retire")["active_pool_id"] == pool_id
    progress = [e.message for e in pools.events.events if e.step == f"pool.{pool_id}"]
    # While waiting, progress shows node counts by state (which states it catches depends
    # on polling moments, so any count line proves it).
    counts = re.compile(r"\b\d+ (creating|starting|waitingforstarttask|idle)\b", re.I)
    assert any(counts.search(m) for m in progress), progress

    writes = pools.writes(lambda: pools.apply(spec))
    assert writes == 0, pools.admin.counters()["operations"]
    assert all(c.action in ("no-op", "skip") for c in pools.plan(spec))


def test_drift_is_shown_by_plan_and_undone_by_apply(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml", name=SHARED)
    pool_id = first_pool(pools, spec)
    pools.apply(spec)
    created = pools.batch.get_pool(pool_id).creation_time

    # Someone resizes the pool and changes its start task.
    pools.batch.begin_resize_pool(
        pool_id, bm.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=0
    ).result()
    pools.batch.update_pool(
        pool_id, bm.BatchPoolUpdateOptions(start_task=bm.BatchStartTask(command_line="hostname"))
    )
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "update"
    assert "target dedicated nodes 3 -> 2" in change.reason
    assert "start task changed" in change.reason
    assert "apply will update it in place" in change.reason

    pools.apply(spec)
    live = pools.batch.get_pool(pool_id)
    assert live.creation_time == created  # the same pool, updated in place
    assert live.target_dedicated_nodes == 2
    assert live.start_task.command_line == load_spec(spec).pools[0].start_task.command_line
    assert pools.writes(lambda: pools.apply(spec)) == 0

    # Someone deletes it: plan says it will be created again.
    pools.batch.begin_delete_pool(pool_id, polling_interval=0).result()
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "create"
    assert "not found" in change.reason
    pools.apply(spec)
    assert pools.batch.get_pool(pool_id).creation_time != created


def test_counts_start_task_and_metadata_update_in_place(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml", name=SHARED)
    pool_id = first_pool(pools, spec)
    pools.apply(spec)
    created = pools.batch.get_pool(pool_id).creation_time

    def edit(data: dict[str, Any]) -> None:
        pool = data["pools"][0]
        pool.update(dedicated_nodes=1, metadata={"owner": "lab"})
        pool["start_task"]["command_line"] = "/bin/sh -c 'echo ready'"
        pool["start_task"]["environment"] = {"MODE": "fast"}

    pools.edit(spec, edit)
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "update"
    for words in ("target dedicated nodes 2 -> 1", "start task changed", "metadata changed"):
        assert words in change.reason

    pools.apply(spec)
    live = pools.batch.get_pool(pool_id)
    assert live.creation_time == created
    assert live.target_dedicated_nodes == 1
    assert live.start_task.command_line == "/bin/sh -c 'echo ready'"
    assert {e.name: e.value for e in live.start_task.environment_settings} == {"MODE": "fast"}
    marks = meta(live)
    assert marks["owner"] == "lab" and Marks.Pool.RUN in marks  # the creator mark is kept
    assert len(list(pools.batch.list_nodes(pool_id))) == 1
    assert pools.writes(lambda: pools.apply(spec)) == 0


def test_pending_resize_is_stopped_before_a_new_size(
    pools: PoolHarness, durations: Callable[..., None]
) -> None:
    """An allocation of 80,000 simulated s (80 s here) inside the pool's resize timeout (the
    24 h maximum; Batch ends a resize at its timeout, 15 min by default): the first resize
    is still pending when the second apply comes, with a wide margin."""
    allocation = 80000
    durations(**{"pool.allocate": allocation})

    def quick(count: int) -> Callable[[dict[str, Any]], None]:
        def edit(data: dict[str, Any]) -> None:
            data["pools"][0].update(dedicated_nodes=count, wait_for="none", resize_timeout_s=86400)

        return edit

    spec = pools.spec("quickstart.yaml", quick(2), name=SHARED)
    pool_id = first_pool(pools, spec)
    pools.apply(spec)
    assert pools.batch.get_pool(pool_id).allocation_state == "resizing"
    pools.edit(spec, quick(1))
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert "target dedicated nodes 2 -> 1" in change.reason
    pools.apply(spec)
    said = [e.message for e in pools.events.events if e.step == f"pool.{pool_id}"]
    assert any("stopping the pending resize" in m for m in said)
    live = pools.batch.get_pool(pool_id)
    assert live.target_dedicated_nodes == 1 and live.allocation_state == "resizing"
    pools.admin.advance(allocation)  # the new resize completes, within its timeout
    live = pools.batch.get_pool(pool_id)
    assert (live.allocation_state, live.current_dedicated_nodes) == ("steady", 1)
    assert not live.resize_errors


def test_autoscale_formula_is_evaluated_in_plan_and_updated_in_place(
    pools: PoolHarness,
) -> None:
    def scaled(nodes: int) -> Callable[[dict[str, Any]], None]:
        def edit(data: dict[str, Any]) -> None:
            pool = data["pools"][0]
            pool.pop("dedicated_nodes", None)
            pool["autoscale"] = {"formula": f"$TargetDedicatedNodes = {nodes};", "interval_min": 5}
            pool["wait_for"] = "steady"

        return edit

    spec = pools.spec("quickstart.yaml", scaled(1), name=SHARED)
    pool_id = first_pool(pools, spec)
    pools.apply(spec)
    live = pools.batch.get_pool(pool_id)
    assert live.enable_auto_scale and live.target_dedicated_nodes == 1
    created = live.creation_time

    pools.edit(spec, scaled(2))
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "update"
    assert "autoscale formula changed" in change.reason
    assert "$TargetDedicatedNodes=2" in change.reason  # evaluated on the live pool
    pools.apply(spec)
    live = pools.batch.get_pool(pool_id)
    assert live.creation_time == created and live.target_dedicated_nodes == 2
    assert live.auto_scale_formula == "$TargetDedicatedNodes = 2;"
    assert pools.writes(lambda: pools.apply(spec)) == 0
