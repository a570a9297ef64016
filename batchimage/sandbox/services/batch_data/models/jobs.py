"""Jobs and tasks, enough for a smoke test: a task waits (`active`) for a free task slot
on an idle or running node of its job's pool, runs (`running`) for `task.run` simulated
seconds, and completes with the exit code a `task_rules` entry gives (default 0) and its
stdout.txt / stderr.txt. Jobs live in `batch_jobs` (`<account>/<job id>`), tasks inside.
"""

from __future__ import annotations

import copy
from typing import Any

from batchimage.sandbox.context import Call, World
from batchimage.sandbox.services.batch_data import rules
from batchimage.sandbox.services.batch_data.errors import (
    conflict,
    invalid_property,
    missing_property,
    not_found,
)
from batchimage.sandbox.services.batch_data.models import nodes, pools, timers
from batchimage.sandbox.services.batch_data.models.accounts import Account
from batchimage.sandbox.services.batch_data.wire import stamp

TABLE = "batch_jobs"
UNLIMITED = "P10675199DT2H48M5.4775807S"  # TimeSpan.MaxValue, as Batch reports "no limit"
_ID_REASON = (
    "The id can contain any combination of alphanumeric characters, hyphens and underscores, "
    "and cannot contain more than 64 characters."
)


def table(world: World) -> dict[str, Any]:
    return world.store.table(TABLE)


def key(account: str, job_id: str) -> str:
    return f"{account.lower()}/{job_id.lower()}"


def require(call: Call, account: Account, *, writing: bool = False) -> dict[str, Any]:
    """The path's job; 404 JobNotFound; 409 JobBeingDeleted for writes while deleting."""
    record: dict[str, Any] | None = table(call.world).get(key(account.name, call.params["job"]))
    if record is None:
        raise not_found(call, "JobNotFound", "job")
    if writing and record["state"] == "deleting":
        raise conflict(
            call,
            "JobBeingDeleted",
            "The specified job has been marked for deletion and is being garbage collected.",
        )
    return record


def require_task(call: Call, job: dict[str, Any]) -> dict[str, Any]:
    task: dict[str, Any] | None = job["_tasks"].get(call.params["task"].lower())
    if task is None:
        raise not_found(call, "TaskNotFound", "task")
    return task


def _check_id(call: Call, value: Any) -> str:
    if not value:
        raise missing_property(call, "id")
    if not isinstance(value, str) or not pools._ID.fullmatch(value):
        raise invalid_property(call, "id", value, _ID_REASON)
    return value


def create(call: Call, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    """Add a job (409 JobExists if the id is taken, 409 ActiveJobAndScheduleQuotaReached
    when the account has `activeJobAndJobScheduleQuota` jobs that are not completed)."""
    job_id = _check_id(call, body.get("id"))
    info = body.get("poolInfo") or {}
    if not info.get("poolId"):
        raise missing_property(call, "poolInfo.poolId")
    if key(account.name, job_id) in table(call.world):
        raise conflict(call, "JobExists", "The specified job already exists.")
    prefix = account.key + "/"
    jobs = [j for k, j in table(call.world).items() if k.startswith(prefix)]
    active = [j for j in jobs if j["state"] != "completed"]
    if len(active) >= int(account.properties.get("activeJobAndJobScheduleQuota", 300)):
        raise conflict(
            call,
            "ActiveJobAndScheduleQuotaReached",
            "Active job and schedule quota for the account has been reached.",
        )
    now = call.clock.now()
    record: dict[str, Any] = {
        "id": job_id,
        "url": f"{account.url(call.world)}/jobs/{job_id}",
        "state": "active",
        "priority": int(body.get("priority", 0)),
        "maxParallelTasks": int(body.get("maxParallelTasks", -1)),
        "allowTaskPreemption": bool(body.get("allowTaskPreemption", False)),
        "usesTaskDependencies": bool(body.get("usesTaskDependencies", False)),
        "constraints": body.get("constraints")
        or {"maxWallClockTime": UNLIMITED, "maxTaskRetryCount": 0},
        "poolInfo": {"poolId": str(info["poolId"])},
        "onAllTasksComplete": body.get("onAllTasksComplete", "noaction"),
        "onTaskFailure": body.get("onTaskFailure", "noaction"),
        "executionInfo": {"startTime": stamp(now), "poolId": str(info["poolId"])},
        "_account": account.name,
        "_created": now,
        "_modified": now,
        "_state_at": now,
        "_tasks": {},
    }
    for name in ("displayName", "metadata", "commonEnvironmentSettings", "networkConfiguration"):
        if body.get(name) is not None:
            record[name] = copy.deepcopy(body[name])
    table(call.world)[key(account.name, job_id)] = record
    call.store.touch()
    return record


def add_task(call: Call, job: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Add a task to `job` (409 TaskExists); it starts when its pool has a free slot."""
    task_id = _check_id(call, body.get("id"))
    if not body.get("commandLine"):
        raise missing_property(call, "commandLine")
    if task_id.lower() in job["_tasks"]:
        raise conflict(call, "TaskExists", "The specified task already exists.")
    now = call.clock.now()
    task: dict[str, Any] = {
        "id": task_id,
        "url": f"{job['url']}/tasks/{task_id}",
        "commandLine": str(body["commandLine"]),
        "state": "active",
        "requiredSlots": int(body.get("requiredSlots", 1)),
        "constraints": body.get("constraints")
        or {
            "maxWallClockTime": UNLIMITED,
            "retentionTime": "P7D",
            "maxTaskRetryCount": job["constraints"].get("maxTaskRetryCount", 0),
        },
        "executionInfo": {"retryCount": 0, "requeueCount": 0},
        "_seq": len(job["_tasks"]) + 1,
        "_created": now,
        "_modified": now,
        "_state_at": now,
        "_files": {},
    }
    for name in ("displayName", "resourceFiles", "environmentSettings", "userIdentity"):
        if body.get(name) is not None:
            task[name] = copy.deepcopy(body[name])
    job["_tasks"][task_id.lower()] = task
    call.store.touch()
    record = _pool_of(call.world, job)
    if record is not None:
        dispatch(call.world, record)
    return task


def _pool_of(world: World, job: dict[str, Any]) -> dict[str, Any] | None:
    found: dict[str, Any] | None = pools.table(world).get(
        pools.key(job["_account"], job["poolInfo"]["poolId"])
    )
    return found


def _set_task_state(world: World, task: dict[str, Any], state: str) -> None:
    task["previousState"] = task["state"]
    task["previousStateTransitionTime"] = stamp(task["_state_at"])
    task["state"] = state
    task["_state_at"] = task["_modified"] = timers.now(world)
    world.store.touch()


def dispatch(world: World, record: dict[str, Any]) -> None:
    """Start waiting tasks of the pool's jobs on nodes with free task slots."""
    if record["state"] != "active":
        return
    waiting = [
        (job, task)
        for job in table(world).values()
        if job["_account"].lower() == record["_account"].lower()
        and job["poolInfo"]["poolId"].lower() == record["id"].lower()
        and job["state"] == "active"
        for task in sorted(job["_tasks"].values(), key=lambda t: t["_seq"])
        if task["state"] == "active"
    ]
    for job, task in waiting:
        node = next(
            (
                n
                for n in record["_nodes"].values()
                if n["state"] in ("idle", "running")
                and n["runningTaskSlotsCount"] + task["requiredSlots"] <= record["taskSlotsPerNode"]
            ),
            None,
        )
        if node is None:
            return
        _start(world, record, job, task, node)


def _start(
    world: World, record: dict[str, Any], job: dict[str, Any], task: dict[str, Any], node: Any
) -> None:
    node["runningTasksCount"] += 1
    node["runningTaskSlotsCount"] += task["requiredSlots"]
    if node["state"] != "running":
        nodes.set_state(world, node, "running")
    root = f"workitems/{job['id']}/job-1/{task['id']}"
    node_url = f"{record['url']}/nodes/{node['id']}"
    task["nodeInfo"] = {
        "affinityId": node["affinityId"],
        "nodeUrl": node_url,
        "poolId": record["id"],
        "nodeId": node["id"],
        "taskRootDirectory": root,
        "taskRootDirectoryUrl": f"{node_url}/files/{root}",
    }
    task["executionInfo"]["startTime"] = stamp(timers.now(world))
    _set_task_state(world, task, "running")
    seconds = world.config.duration("task.run", 10.0)
    args = {"job": key(job["_account"], job["id"]), "task": task["id"].lower(), "node": node["id"]}
    timers.later(world, seconds, "batch.task_done", args)


@timers.action("batch.task_done")
def _task_done(world: World, args: dict[str, Any]) -> None:
    job = table(world).get(args["job"])
    task = job["_tasks"].get(args["task"]) if job else None
    if job is None or task is None or task["state"] != "running":
        return
    result = rules.outcome(world, "task", task["commandLine"])
    info = task["executionInfo"]
    retries = int(task["constraints"].get("maxTaskRetryCount", 0))
    task["_files"]["stdout.txt"] = {"content": result.stdout, "at": timers.now(world)}
    task["_files"]["stderr.txt"] = {"content": result.stderr, "at": timers.now(world)}
    info["exitCode"] = result.exit_code
    if result.exit_code != 0 and (retries == -1 or info["retryCount"] < retries):
        info["retryCount"] += 1
        info["lastRetryTime"] = stamp(timers.now(world))
        timers.later(world, world.config.duration("task.run", 10.0), "batch.task_done", args)
        return
    info["endTime"] = stamp(timers.now(world))
    info["result"] = "success" if result.exit_code == 0 else "failure"
    if result.exit_code != 0:
        info["failureInfo"] = {
            "category": "usererror",
            "code": "FailureExitCode",
            "message": nodes.FAILURE_EXIT,
            "details": [{"name": "Message", "value": nodes.FAILURE_EXIT}],
        }
    _set_task_state(world, task, "completed")
    _release(world, job, task, args["node"], succeeded=result.exit_code == 0)


def _release(
    world: World, job: dict[str, Any], task: dict[str, Any], node_id: str, *, succeeded: bool
) -> None:
    record = _pool_of(world, job)
    node = record["_nodes"].get(node_id) if record else None
    if record is None or node is None:
        return
    node["runningTasksCount"] = max(node["runningTasksCount"] - 1, 0)
    node["runningTaskSlotsCount"] = max(node["runningTaskSlotsCount"] - task["requiredSlots"], 0)
    node["totalTasksRun"] += 1
    node["totalTasksSucceeded"] += int(succeeded)
    if node["runningTasksCount"] == 0 and node["state"] == "running":
        nodes.become_idle(world, record, node)
    else:
        dispatch(world, record)


def delete(world: World, job: dict[str, Any]) -> None:
    """Mark the job deleting (running tasks end), gone after `job.delete`."""
    job["previousState"] = job["state"]
    job["previousStateTransitionTime"] = stamp(job["_state_at"])
    job["state"] = "deleting"
    job["_state_at"] = job["_modified"] = timers.now(world)
    world.store.touch()
    for task in job["_tasks"].values():
        if task["state"] == "running":
            _set_task_state(world, task, "completed")
            node_id = task.get("nodeInfo", {}).get("nodeId", "")
            _release(world, job, task, node_id, succeeded=False)
    seconds = world.config.duration("job.delete", 10.0)
    timers.later(world, seconds, "batch.job_deleted", {"job": key(job["_account"], job["id"])})


@timers.action("batch.job_deleted")
def _job_deleted(world: World, args: dict[str, Any]) -> None:
    if table(world).pop(args["job"], None) is not None:
        world.store.touch()
