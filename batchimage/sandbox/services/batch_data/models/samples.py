"""A pool's sample history for autoscale formulas, read from the sandbox's own records: a
sample every 30 simulated seconds from the pool's creation (24 simulated hours kept),
each the pool's state at that time - task counts from the tasks of the jobs bound to the
pool (their creation, start and end times), node counts from the pool's nodes and the
nodes it removed (their creation and removal times; $UsableNodeCount and
$PreemptedNodeCount use a node's current state, a removed node counts as usable).
$CPUPercent is the share of the nodes' task slots running tasks, $WallClockSeconds the
running tasks times the period; the other resource metrics are 0. Samples are available
at once (Batch's delay of about a minute is not modelled).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox.context import World
from batchimage.sandbox.services.batch_data.models import jobs, timers
from batchimage.sandbox.services.batch_data.models.formula import Samples

PERIOD = 30.0
RETENTION = 24 * 3600.0
GONE_KEPT = 1000  # removed nodes remembered per pool
_FOREVER = float("inf")
_USABLE = ("idle", "running")


@dataclass(frozen=True)
class _Task:
    created: float
    started: float
    ended: float
    result: str
    slots: int


def history(world: World, record: dict[str, Any]) -> Samples:
    """The samples an autoscale evaluation of pool `record` reads now."""
    now, scale = timers.now(world), world.clock.scale
    age = (now - record["_created"]) / scale if scale else RETENTION
    count = int(min(max(age, 0.0), RETENTION) // PERIOD) + 1
    tasks = _tasks(world, record)
    nodes = [(n["_created"], _FOREVER, n) for n in record["_nodes"].values()]
    nodes += [(g["created"], g["removed"], g) for g in record.get("_gone_nodes", [])]

    def value(name: str, age: float) -> float:
        at = now - age * scale
        alive = [n for created, removed, n in nodes if created <= at < removed]
        return _metric(name, at, PERIOD * scale, tasks, alive, record)

    return Samples(now=now, scale=scale, period=PERIOD, count=count, value=value)


def node_removed(record: dict[str, Any], node: dict[str, Any], at: float) -> None:
    """Remember a node leaving pool `record` at `at`, for the samples of its past."""
    gone = record.setdefault("_gone_nodes", [])
    gone.append({"created": node["_created"], "removed": at, "isDedicated": node["isDedicated"]})
    del gone[:-GONE_KEPT]


def _tasks(world: World, record: dict[str, Any]) -> list[_Task]:
    out = []
    for job in jobs.table(world).values():
        if (
            job["_account"].lower() != record["_account"].lower()
            or job["poolInfo"]["poolId"].lower() != record["id"].lower()
        ):
            continue
        for task in job["_tasks"].values():
            info = task["executionInfo"]
            started = _parse(info["startTime"]) if info.get("startTime") else _FOREVER
            ended = task["_state_at"] if task["state"] == "completed" else _FOREVER
            slots = int(task.get("requiredSlots", 1))
            out.append(_Task(task["_created"], started, ended, info.get("result", ""), slots))
    return out


def _parse(text: str) -> float:
    """A stamp the sandbox wrote (`2016-11-22T18:55:25.2608590Z`) as epoch seconds."""
    when = dt.datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=dt.UTC)
    return when.timestamp()


def _metric(
    name: str,
    at: float,
    width: float,
    tasks: list[_Task],
    nodes: list[dict[str, Any]],
    record: dict[str, Any],
) -> float:
    running = [t for t in tasks if t.started <= at < t.ended]
    active = [t for t in tasks if t.created <= at < min(t.started, t.ended)]
    finished = [t for t in tasks if at - width < t.ended <= at]
    slots = len(nodes) * int(record["taskSlotsPerNode"])
    dedicated = sum(1 for n in nodes if n["isDedicated"])
    values = {
        "$ActiveTasks": len(active),
        "$RunningTasks": len(running),
        "$PendingTasks": len(active) + len(running),
        "$SucceededTasks": sum(1 for t in finished if t.result == "success"),
        "$FailedTasks": sum(1 for t in finished if t.result == "failure"),
        "$CurrentDedicatedNodes": dedicated,
        "$CurrentLowPriorityNodes": len(nodes) - dedicated,
        "$SampleNodeCount": len(nodes),
        "$UsableNodeCount": sum(1 for n in nodes if n.get("state", "idle") in _USABLE),
        "$PreemptedNodeCount": sum(1 for n in nodes if n.get("state") == "preempted"),
        "$TaskSlotsPerNode": int(record["taskSlotsPerNode"]),
        "$CPUPercent": min(100.0 * sum(t.slots for t in running) / slots, 100.0) if slots else 0,
        "$WallClockSeconds": len(running) * PERIOD,
    }
    return float(values.get(name, 0))
