"""Jobs and tasks through the real BatchClient, as a pool smoke test uses them: a task
runs on an idle node and completes (exit code 0 by default, or per a task rule), its
stdout/stderr can be read, and the job is deleted with the SDK's poller."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from tests.sandbox import batch_support
from tests.sandbox.batch_support import pool_options, wait_for, wait_nodes

batch = batch_support.batch  # fixtures
batch_rules = batch_support.batch_rules


def _completed(batch: BatchClient, job_id: str, task_id: str) -> bm.BatchTask:
    def done() -> bm.BatchTask | None:
        task = batch.get_task(job_id, task_id)
        return task if task.state == bm.BatchTaskState.COMPLETED else None

    task: bm.BatchTask = wait_for(done, f"task {task_id} completed")
    return task


def _output(batch: BatchClient, job_id: str, task_id: str, name: str) -> str:
    return b"".join(batch.download_task_file(job_id, task_id, name)).decode()


def test_smoke_job(
    batch: BatchClient, unique: Callable[[str], str], batch_rules: Callable[..., None]
) -> None:
    batch_rules(task_rules=[{"match": "fail-me", "exit_code": 2, "stderr": "boom\n"}])
    pool_id, job_id = unique("smoke"), unique("job")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=1))
    (node,) = wait_nodes(batch, pool_id, {"idle"}, 1)
    batch.create_job(
        bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=pool_id))
    )
    job = batch.get_job(job_id)
    assert job.state == bm.BatchJobState.ACTIVE and job.pool_info.pool_id == pool_id
    with pytest.raises(ResourceExistsError) as dup:
        batch.create_job(
            bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=pool_id))
        )
    assert dup.value.error is not None and dup.value.error.code == "JobExists"

    batch.create_task(job_id, bm.BatchTaskCreateOptions(id="ok", command_line="/bin/echo smoke"))
    ok = _completed(batch, job_id, "ok")
    info = ok.execution_info
    assert (info.exit_code, info.result, info.failure_info) == (0, "success", None)
    assert ok.node_info.node_id == node.id and ok.node_info.pool_id == pool_id
    assert "smoke" in _output(batch, job_id, "ok", "stdout.txt")
    with pytest.raises(ResourceExistsError) as again:
        batch.create_task(job_id, bm.BatchTaskCreateOptions(id="ok", command_line="true"))
    assert again.value.error is not None and again.value.error.code == "TaskExists"

    batch.create_task(job_id, bm.BatchTaskCreateOptions(id="bad", command_line="./fail-me"))
    bad = _completed(batch, job_id, "bad")
    assert bad.execution_info.exit_code == 2 and bad.execution_info.result == "failure"
    assert bad.execution_info.failure_info.code == "FailureExitCode"
    assert _output(batch, job_id, "bad", "stderr.txt") == "boom\n"

    added = batch.create_tasks(
        job_id, [bm.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(3)]
    )
    assert sorted(r.task_id for r in added.result_values) == ["t0", "t1", "t2"]
    assert all(r.status == "success" for r in added.result_values)
    for i in range(3):
        assert _completed(batch, job_id, f"t{i}").execution_info.exit_code == 0
    assert {t.id for t in batch.list_tasks(job_id)} == {"ok", "bad", "t0", "t1", "t2"}
    node = batch.get_node(pool_id, node.id)
    assert (node.state, node.total_tasks_run, node.total_tasks_succeeded) == ("idle", 5, 4)

    batch.begin_delete_job(job_id, polling_interval=0).result()
    with pytest.raises(ResourceNotFoundError) as gone:
        batch.get_job(job_id)
    assert gone.value.error is not None and gone.value.error.code == "JobNotFound"


def test_task_waits_for_a_node(batch: BatchClient, unique: Callable[[str], str]) -> None:
    pool_id, job_id = unique("later"), unique("job")
    batch.create_pool(pool_options(pool_id))
    batch.create_job(
        bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=pool_id))
    )
    batch.create_task(job_id, bm.BatchTaskCreateOptions(id="wait", command_line="true"))
    assert batch.get_task(job_id, "wait").state == bm.BatchTaskState.ACTIVE
    batch_support.wait_steady(batch, pool_id)
    batch.begin_resize_pool(pool_id, bm.BatchPoolResizeOptions(target_dedicated_nodes=1))
    assert _completed(batch, job_id, "wait").execution_info.exit_code == 0
    with pytest.raises(ResourceNotFoundError) as missing:
        batch.get_task(job_id, "nope")
    assert missing.value.error is not None and missing.value.error.code == "TaskNotFound"
