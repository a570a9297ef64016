"""Rollouts through the engine against the sandbox: a change only a new pool can take (VM
size, a new image version from a changed customize script) rolls out blue/green (new pool
`<id>-<version>`, old one retired only after the new one is healthy and its smoke test
passed) or by recreate; a failed new pool or smoke test leaves the old pool serving."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from azure.batch import models as bm

from batchimage.core.errors import BatchImageError
from batchimage.core.ownership import Marks
from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness
from tests.sandbox.batch_support import HELD, wait_for

SHARED = "pools-ubuntu"


def pool_of(spec: Any) -> str:
    return str(load_spec(spec).pools[0].id)


def setting(**values: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["pools"][0].update(values)

    return edit


def said(pools: PoolHarness, step: str) -> list[str]:
    return [e.message for e in pools.events.events if e.step == step]


def test_vm_size_change_rolls_out_blue_green(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml", name=SHARED)
    old = pool_of(spec)
    pools.apply(spec)
    pools.edit(spec, setting(vm_size="Standard_D4s_v5"))
    change = pools.change(pools.plan(spec), f"pool.{old}")
    assert change.action == "replace"
    new = f"{old}-v1-0-0"
    assert "VM size standard_d2s_v5 -> standard_d4s_v5" in change.reason
    assert f"blue_green: apply will create pool {new}" in change.reason
    assert f"then retire {old}" in change.reason

    result = pools.apply(spec)
    assert pools.change(result.changes, f"pool.{old}").action == "replaced"
    assert pools.change(result.changes, f"pool.{old}.retire").action == "delete"
    assert pools.pool_ids(old) == [new]
    assert pools.batch.get_pool(new).vm_size.lower() == "standard_d4s_v5"
    assert pools.outputs(spec, f"pool.{old}")["pool_id"] == new
    assert pools.outputs(spec, f"pool.{old}.retire")["active_pool_id"] == new
    # The old pool was retired only after the new one was verified healthy.
    events = [(e.step, e.message) for e in pools.events.events]
    ready = events.index(
        (f"pool.{old}", f"pool {new} runs image 1.0.0 with node agent batch.node.ubuntu 24.04")
    )
    retired = events.index((f"pool.{old}.retire", f"retiring pool {old} (pool {new} serves now)"))
    assert ready < retired
    assert pools.writes(lambda: pools.apply(spec)) == 0


def test_vm_size_change_recreates_in_place(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml", setting(rollout="recreate"), name=SHARED)
    pool_id = pool_of(spec)
    pools.apply(spec)
    created = pools.batch.get_pool(pool_id).creation_time
    pools.edit(spec, setting(vm_size="Standard_D4s_v5"))
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "replace"
    assert "recreate: apply will delete it and create it again" in change.reason
    pools.apply(spec)
    live = pools.batch.get_pool(pool_id)
    assert live.creation_time != created and live.vm_size.lower() == "standard_d4s_v5"
    assert pools.pool_ids(pool_id) == [pool_id]


def test_failed_new_pool_leaves_the_old_one_serving(
    pools: PoolHarness, batch_rules: Callable[..., None]
) -> None:
    spec = pools.spec("quickstart.yaml", name=SHARED)
    old = pool_of(spec)
    pools.apply(spec)
    # From now on the start task fails on new nodes (the old pool's nodes have run it).
    batch_rules(
        start_task_rules=[
            {"match": "reference-data", "exit_code": 3, "stderr": "cat: no such file\n"}
        ]
    )
    pools.edit(spec, setting(vm_size="Standard_D4s_v5"))
    with pytest.raises(BatchImageError) as failed:
        pools.apply(spec)
    message = str(failed.value)
    assert f"pool.{old}" in message and "start task exit code 3" in message
    assert "cat: no such file" in message
    new = f"{old}-v1-0-0"
    assert pools.pool_ids(old) == sorted([old, new])  # the old pool is still there
    assert {n.state for n in pools.batch.list_nodes(old)} == {"idle"}
    assert pools.outputs(spec, f"pool.{old}.retire")["active_pool_id"] == old


def test_smoke_test_gates_the_rollout(pools: PoolHarness, batch_rules: Callable[..., None]) -> None:
    smoke = {"command_line": "/bin/sh -c 'echo smoke-ok'", "timeout_s": 60}
    spec = pools.spec("quickstart.yaml", setting(smoke_test=smoke), name=SHARED)
    old = pool_of(spec)
    result = pools.apply(spec)
    assert pools.change(result.changes, f"pool.{old}.smoke").action == "created"
    marks = {m.name: m.value for m in pools.batch.get_pool(old).metadata}
    assert marks[Marks.Pool.SMOKE_TEST] == pools.outputs(spec, f"pool.{old}.smoke")["test"]
    assert list(pools.batch.list_jobs()) == [] or all(
        not str(j.id).startswith("batchimage-smoke-" + old) for j in pools.batch.list_jobs()
    )
    assert pools.writes(lambda: pools.apply(spec)) == 0  # passed once: not run again

    batch_rules(task_rules=[{"match": "smoke-ok", "exit_code": 2, "stderr": "smoke broke\n"}])
    pools.edit(spec, setting(vm_size="Standard_D4s_v5"))
    with pytest.raises(BatchImageError) as failed:
        pools.apply(spec)
    message = str(failed.value)
    assert f"pool.{old}.smoke" in message and "SmokeTestFailed" in message
    assert "exit code 2" in message and "smoke broke" in message
    new = f"{old}-v1-0-0"
    assert pools.pool_ids(old) == sorted([old, new])  # the old pool keeps serving
    assert pools.outputs(spec, f"pool.{old}.retire")["active_pool_id"] == old
    jobs = [str(j.id) for j in pools.batch.list_jobs()]
    assert not [j for j in jobs if j.startswith(f"batchimage-smoke-{new}")]  # deleted

    batch_rules(task_rules=[])  # the test passes now: the rollout completes
    pools.apply(spec)
    assert pools.pool_ids(old) == [new]
    assert pools.outputs(spec, f"pool.{old}.retire")["active_pool_id"] == new


@pytest.mark.parametrize("rollout", ["blue_green", "recreate"])
def test_changed_customize_script_rolls_out_a_new_image(pools: PoolHarness, rollout: str) -> None:
    spec = pools.spec("quickstart.yaml", setting(rollout=rollout))
    pool_id = pool_of(spec)
    pools.apply(spec)
    first = pools.outputs(spec, "capture.version")["version_id"]

    def script(data: dict[str, Any]) -> None:
        data["image"]["customize"][0]["shell"] += "echo v2 >> /etc/batchimage-release\n"

    pools.edit(spec, script)
    plan = pools.plan(spec)
    reasons = {c.key: (c.action, c.reason) for c in plan}
    # What changed, what it causes, and nothing false (cleanup deleted the last build).
    assert reasons["capture.version"] == (
        "create",
        "a new image version: customize.0 script changed (since version 1.0.0)",
    )
    assert reasons["customize.0"][1].startswith("the script changed")
    assert not [k for k, (_, why) in reasons.items() if "deleted outside" in why]
    assert reasons["build.network"] == (
        "create",
        "deleted by cleanup after the last apply; made again for capture.version",
    )
    action, why = reasons[f"pool.{pool_id}"]
    assert action == "replace"
    if rollout == "blue_green":
        assert why.startswith("blue/green rollout onto the new image version")
        assert reasons[f"pool.{pool_id}.retire"] == (
            "delete",
            f"will delete pool {pool_id} once the new pool is idle",
        )
    else:
        assert why.startswith("recreate onto the new image version")
    pools.apply(spec)
    version = pools.outputs(spec, "capture.version")
    assert version["version"] == "1.0.1"
    active = f"{pool_id}-v1-0-1" if rollout == "blue_green" else pool_id
    assert pools.pool_ids(pool_id) == [active]
    live = pools.batch.get_pool(active)
    assert (
        live.virtual_machine_configuration.image_reference.virtual_machine_image_id
        == (version["version_id"])
    )
    assert pools.outputs(spec, f"pool.{pool_id}.retire")["active_pool_id"] == active
    # The old image version stays (never deleted by a rollout).
    assert pools.resource(first) is not None
    assert pools.writes(lambda: pools.apply(spec)) == 0


def test_old_pool_is_retired_once_its_running_tasks_finish(
    pools: PoolHarness, durations: Callable[..., None]
) -> None:
    spec = pools.spec("quickstart.yaml", name=SHARED)
    old = pool_of(spec)
    pools.apply(spec)
    durations(**{"task.run": HELD})  # running until the test moves the clock on
    job = f"work-{old}"
    batch = pools.batch
    batch.create_job(bm.BatchJobCreateOptions(id=job, pool_info=bm.BatchPoolInfo(pool_id=old)))
    batch.create_task(job, bm.BatchTaskCreateOptions(id="t1", command_line="/bin/sh -c 'work'"))
    wait_for(lambda: batch.get_task(job, "t1").state == "running", "the task to run")
    pools.edit(spec, setting(vm_size="Standard_D4s_v5"))
    waits = f"waiting for tasks on pool {old} to finish"
    with ThreadPoolExecutor(1) as runner:
        rollout = runner.submit(pools.apply, spec)
        wait_for(
            lambda: any(waits in m for m in said(pools, f"pool.{old}.retire")) or rollout.done(),
            "the rollout to wait for the running task",
            timeout=120,
        )
        assert not rollout.done() and batch.get_task(job, "t1").state == "running"
        pools.admin.advance(HELD)  # the task ends; the old pool can go
        rollout.result(timeout=120)
    task = batch.get_task(job, "t1")
    assert task.state == "completed" and task.execution_info.exit_code == 0
    assert pools.pool_ids(old) == [f"{old}-v1-0-0"]
    batch.begin_delete_job(job, polling_interval=0).result()
