"""Compute nodes: `creating -> starting -> (waitingforstarttask) -> idle`, or `unusable`
(without node errors) when the image does not come up with the pool's node agent, or
`starttaskfailed` when a start task with waitForSuccess fails (after its retries). Nodes
live in their pool record (`_nodes`); their files (`startup/stdout.txt`, ...) in `_files`.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from typing import Any

from batchimage.sandbox.context import World
from batchimage.sandbox.services.batch_data import rules
from batchimage.sandbox.services.batch_data.models import images, pools, resource_files, timers
from batchimage.sandbox.services.batch_data.models.accounts import account_of
from batchimage.sandbox.services.batch_data.wire import stamp

AGENT_VERSION = "1.12.15"
BOOT_SHARE = 0.4  # of `node.start`: creating; the rest: starting
_FIRST_OUT = ("unusable", "starttaskfailed", "creating", "starting", "waitingforstarttask")
FAILURE_EXIT = "The task exited with an exit code representing a failure"


def members(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The pool's nodes that are not leaving it."""
    return [n for n in record["_nodes"].values() if n["state"] != "leavingpool"]


def removal_order(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which nodes a shrink removes first: broken and unready ones, then the newest."""
    return sorted(
        nodes,
        key=lambda n: (
            n["state"] not in _FIRST_OUT,
            n["state"] == "running",
            -n["_seq"],
        ),
    )


def set_state(world: World, node: dict[str, Any], state: str) -> None:
    node["state"] = state
    node["_state_at"] = timers.now(world)
    world.store.touch()


def leave(world: World, node: dict[str, Any]) -> None:
    if node["state"] != "leavingpool":
        node["_before"] = node["state"]
        set_state(world, node, "leavingpool")


def stay(world: World, node: dict[str, Any]) -> None:
    set_state(world, node, node.pop("_before", "idle"))


def add(world: World, record: dict[str, Any], dedicated: bool) -> dict[str, Any]:
    """A new node in `creating` (it boots over `node.start` simulated seconds)."""
    seq = int(record.get("_node_seq", 0)) + 1
    record["_node_seq"] = seq
    node_id = "tvmps_" + hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    now = timers.now(world)
    node: dict[str, Any] = {
        "id": node_id,
        "state": "creating",
        "schedulingState": "enabled",
        "isDedicated": dedicated,
        "vmSize": record["vmSize"],
        "ipAddress": f"10.0.{seq // 250}.{4 + seq % 250}",
        "affinityId": f"TVM:{node_id}",
        "totalTasksRun": 0,
        "runningTasksCount": 0,
        "runningTaskSlotsCount": 0,
        "totalTasksSucceeded": 0,
        "_seq": seq,
        "_created": now,
        "_state_at": now,
        "_files": {},
        "_image_version": _image_version(world, record),
    }
    record["_nodes"][node_id] = node
    world.store.touch()
    boot = world.config.duration("node.start", 180.0)
    timers.later(world, boot * BOOT_SHARE, "batch.node_starting", _args(record, node))
    return node


def _image_version(world: World, record: dict[str, Any]) -> str | None:
    """The gallery image version a new node boots from (a definition means its latest)."""
    image_id = record["virtualMachineConfiguration"]["imageReference"].get("virtualMachineImageId")
    if not image_id:
        return None
    from batchimage.sandbox.services.compute.models import facts

    found = facts.image_facts(world, image_id)
    return found.version_id if found else record.get("_image_version")


def _args(record: dict[str, Any], node: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"pool": pools.key(record["_account"], record["id"]), "node": node["id"], **extra}


def _find(world: World, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    record = pools.table(world).get(args["pool"])
    node = record["_nodes"].get(args["node"]) if record else None
    if record is None or node is None or node["state"] == "leavingpool":
        return None
    return record, node


@timers.action("batch.node_starting")
def _starting(world: World, args: dict[str, Any]) -> None:
    found = _find(world, args)
    if found is None or found[1]["state"] != "creating":
        return
    record, node = found
    node["allocationTime"] = stamp(node["_created"])
    set_state(world, node, "starting")
    boot = world.config.duration("node.start", 180.0)
    timers.later(world, boot * (1 - BOOT_SHARE), "batch.node_ready", _args(record, node))


@timers.action("batch.node_ready")
def _ready(world: World, args: dict[str, Any]) -> None:
    found = _find(world, args)
    if found is None or found[1]["state"] != "starting":
        return
    record, node = found
    node["lastBootTime"] = stamp(timers.now(world))
    agent = record["virtualMachineConfiguration"]["nodeAgentSKUId"]
    if node["_image_version"] and not images.boots(world, node["_image_version"], agent):
        set_state(world, node, "unusable")  # no node errors: Batch cannot reach its agent
        return
    task = record.get("startTask")
    if not task:
        become_idle(world, record, node)
        return
    node["startTask"] = copy.deepcopy(task)
    node["startTaskInfo"] = {
        "state": "running",
        "startTime": stamp(timers.now(world)),
        "retryCount": 0,
    }
    if task.get("waitForSuccess", True):
        set_state(world, node, "waitingforstarttask")
    else:
        become_idle(world, record, node)
    seconds = world.config.duration("node.start_task", 30.0)
    timers.later(world, seconds, "batch.start_task_done", _args(record, node))


@timers.action("batch.start_task_done")
def _start_task_done(world: World, args: dict[str, Any]) -> None:
    found = _find(world, args)
    if found is None or "startTaskInfo" not in found[1]:
        return
    record, node = found
    task, info = node["startTask"], node["startTaskInfo"]
    account = account_of(world, record["_account"])
    failure = (
        resource_files.problem(world, account, task.get("resourceFiles") or [])
        if account is not None
        else None
    )
    now = timers.now(world)
    if failure is None:
        result = rules.outcome(world, "start_task", str(task.get("commandLine", "")))
        write_file(world, node, "startup/stdout.txt", result.stdout)
        write_file(world, node, "startup/stderr.txt", result.stderr)
        info["exitCode"] = result.exit_code
        if result.exit_code != 0:
            failure = _exit_failure()
    retries = int(task.get("maxTaskRetryCount", 0))
    if failure is not None and (retries == -1 or info["retryCount"] < retries):
        info["retryCount"] += 1
        info["lastRetryTime"] = stamp(now)
        world.store.touch()
        seconds = world.config.duration("node.start_task", 30.0)
        timers.later(world, seconds, "batch.start_task_done", args)
        return
    info.update({"state": "completed", "endTime": stamp(now)})
    info["result"] = "failure" if failure else "success"
    if failure:
        info["failureInfo"] = failure
    world.store.touch()
    if node["state"] == "waitingforstarttask":
        if failure is not None:
            set_state(world, node, "starttaskfailed")
        else:
            become_idle(world, record, node)


def _exit_failure() -> dict[str, Any]:
    return {
        "category": "usererror",
        "code": "FailureExitCode",
        "message": FAILURE_EXIT,
        "details": [{"name": "Message", "value": FAILURE_EXIT}],
    }


def become_idle(world: World, record: dict[str, Any], node: dict[str, Any]) -> None:
    """The node can run tasks: idle now, and any waiting task of the pool's jobs starts."""
    from batchimage.sandbox.services.batch_data.models import jobs

    set_state(world, node, "idle")
    jobs.dispatch(world, record)


def write_file(world: World, node: dict[str, Any], path: str, text: str) -> None:
    node["_files"][path] = {"content": text, "at": timers.now(world)}
    world.store.touch()
