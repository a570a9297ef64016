"""A smoke test on a pool: one job with one task, waited for, its exit code checked and its
output shown, the job deleted afterwards (also when the test fails).

    result = run_smoke_test(ctx, pools, "quickstart-v1-0-1", "python3 -V", timeout_s=600)
    result.exit_code, result.stdout

A failing task raises PermanentAzureError (code SmokeTestFailed) with the exit code and
the tail of stdout/stderr; a task that does not finish in time raises SmokeTestTimedOut.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from azure.batch import models as bm

from batchimage.azure.arm import text
from batchimage.azure.batch_pools import poll_or_raise
from batchimage.core.clip import tail_lines
from batchimage.core.errors import PermanentAzureError

if TYPE_CHECKING:
    from batchimage.azure.batch_pools import BatchPools
    from batchimage.azure.calls import Calls

TASK_ID = "smoke-test"
TAIL_LINES = 20


@dataclass(frozen=True)
class SmokeResult:
    """What the smoke test task did."""

    job_id: str
    exit_code: int
    stdout: str
    stderr: str


def smoke_job_id(pool_id: str, command_line: str) -> str:
    """A deterministic job id for the smoke test of `command_line` on `pool_id` (<= 64)."""
    digest = hashlib.sha256(f"{pool_id}\n{command_line}".encode()).hexdigest()[:10]
    return f"batchimage-smoke-{pool_id[:36]}-{digest}"


def tail(content: str, lines: int = TAIL_LINES) -> str:
    """The last `lines` non-empty lines of `content`, each bounded."""
    return "\n".join(tail_lines(content, lines))


def run_smoke_test(
    ctx: Calls, pools: BatchPools, pool_id: str, command_line: str, *, timeout_s: int
) -> SmokeResult:
    """Run the smoke test; returns its result when the task exits 0, raises otherwise."""
    job_id = smoke_job_id(pool_id, command_line)
    if pools.job_exists(job_id):  # left by an interrupted run
        pools.delete_job(ctx, job_id)
    ctx.say(f"smoke test on pool {pool_id}: {command_line}")
    pools.create_job(job_id, pool_id)
    try:
        pools.create_task(
            job_id,
            bm.BatchTaskCreateOptions(
                id=TASK_ID,
                command_line=command_line,
                constraints=bm.BatchTaskConstraints(
                    max_wall_clock_time=timedelta(seconds=timeout_s), max_task_retry_count=0
                ),
            ),
        )
        task = _wait(ctx, pools, job_id, pool_id, timeout_s)
        stdout = pools.task_file(job_id, TASK_ID, "stdout.txt") or ""
        stderr = pools.task_file(job_id, TASK_ID, "stderr.txt") or ""
    finally:
        pools.delete_job(ctx, job_id)
    info = task.execution_info
    exit_code = getattr(info, "exit_code", None)
    failure = getattr(info, "failure_info", None)
    if exit_code != 0:
        why = f"exit code {exit_code}" if exit_code is not None else "no exit code"
        if failure is not None:
            why += f" ({text(failure.code)}: {failure.message})"
        raise PermanentAzureError(
            f"smoke test on pool {pool_id} failed: {why}\n  command: {command_line}\n"
            f"  stdout (last {TAIL_LINES} lines):\n{_indent(tail(stdout))}\n"
            f"  stderr (last {TAIL_LINES} lines):\n{_indent(tail(stderr))}\n"
            "  the old pool (if any) keeps serving; fix the image or the smoke test, then run "
            "apply again",
            code="SmokeTestFailed",
        )
    shown = tail(stdout, 5)
    ctx.say(f"smoke test passed on pool {pool_id}" + (f": {shown}" if shown else ""))
    return SmokeResult(job_id, 0, stdout, stderr)


def _indent(content: str) -> str:
    return "\n".join(f"    | {line}" for line in content.splitlines()) or "    (empty)"


def _wait(ctx: Calls, pools: BatchPools, job_id: str, pool_id: str, timeout_s: int) -> bm.BatchTask:
    def probe() -> bm.BatchTask | None:
        task = pools.get_task(job_id, TASK_ID)
        return task if text(task.state).lower() == "completed" else None

    return poll_or_raise(
        ctx,
        probe,
        f"smoke test on pool {pool_id}",
        timeout_s=timeout_s,
        default_s=5,
        error=lambda: PermanentAzureError(
            f"smoke test on pool {pool_id} did not finish within {timeout_s} s; raise "
            "smoke_test.timeout_s or check that the pool's nodes can run tasks",
            code="SmokeTestTimedOut",
        ),
    )
