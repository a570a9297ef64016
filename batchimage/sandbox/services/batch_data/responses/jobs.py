"""Jobs and tasks on the wire: create, get, list, delete, addtaskcollection, task files,
and a job or task as Batch returns it."""

from __future__ import annotations

import copy
from typing import Any

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.batch_data import wire
from batchimage.sandbox.services.batch_data.models import jobs
from batchimage.sandbox.services.batch_data.models.accounts import require_account
from batchimage.sandbox.services.batch_data.responses import files


def render(item: dict[str, Any]) -> dict[str, Any]:
    """A job or task as Batch returns it."""
    out = {k: copy.deepcopy(v) for k, v in item.items() if not k.startswith("_")}
    out.update(
        {
            "eTag": wire.etag(item["_modified"]),
            "lastModified": wire.stamp(item["_modified"]),
            "creationTime": wire.stamp(item["_created"]),
            "stateTransitionTime": wire.stamp(item["_state_at"]),
        }
    )
    return out


def create_job(call: Call) -> Reply:
    account = require_account(call)
    record = jobs.create(call, account, wire.body(call))
    return wire.reply(201, None, record)


def get_job(call: Call) -> Reply:
    account = require_account(call)
    record = jobs.require(call, account)
    wire.check_conditions(call, record, reading=True)
    return wire.reply(200, wire.select(call, render(record)), record)


def list_jobs(call: Call) -> Reply:
    account = require_account(call)
    prefix = account.key + "/"
    items = [render(r) for k, r in sorted(jobs.table(call.world).items()) if k.startswith(prefix)]
    return wire.page(call, wire.filter_items(call, items), f"{account.url(call.world)}/jobs")


def delete_job(call: Call) -> Reply:
    account = require_account(call)
    record = jobs.require(call, account, writing=True)
    wire.check_conditions(call, record, reading=False)
    jobs.delete(call.world, record)
    return wire.reply(202, None)


def create_task(call: Call) -> Reply:
    account = require_account(call)
    job = jobs.require(call, account, writing=True)
    task = jobs.add_task(call, job, wire.body(call))
    return wire.reply(201, None, task)


def render_task_added(task: dict[str, Any]) -> dict[str, Any]:
    """An addtaskcollection result for a task added."""
    return {
        "status": "success",
        "taskId": task["id"],
        "eTag": wire.etag(task["_modified"]),
        "lastModified": wire.stamp(task["_modified"]),
        "location": task["url"],
    }


def render_task_refused(task_id: Any, exc: ApiError) -> dict[str, Any]:
    """An addtaskcollection result for a task refused, with the error a single add gets."""
    error: dict[str, Any] = {
        "code": exc.code,
        "message": {"lang": "en-US", "value": exc.message},
    }
    if exc.values:
        error["values"] = exc.values
    return {"status": "clienterror", "taskId": task_id, "error": error}


def add_task_collection(call: Call) -> Reply:
    """addtaskcollection: each task added or reported with its error (status 200)."""
    account = require_account(call)
    job = jobs.require(call, account, writing=True)
    results: list[dict[str, Any]] = []
    for item in wire.body(call).get("value") or []:
        try:
            task = jobs.add_task(call, job, item)
        except ApiError as exc:
            results.append(render_task_refused(item.get("id"), exc))
            continue
        results.append(render_task_added(task))
    return wire.reply(200, {"value": results})


def list_tasks(call: Call) -> Reply:
    account = require_account(call)
    job = jobs.require(call, account)
    items = [render(t) for t in sorted(job["_tasks"].values(), key=lambda t: t["_seq"])]
    return wire.page(call, wire.filter_items(call, items), f"{job['url']}/tasks")


def get_task(call: Call) -> Reply:
    account = require_account(call)
    task = jobs.require_task(call, jobs.require(call, account))
    return wire.reply(200, wire.select(call, render(task)), task)


def list_task_files(call: Call) -> Reply:
    account = require_account(call)
    task = jobs.require_task(call, jobs.require(call, account))
    return files.list_files(task["url"], task["_files"], call)


def get_task_file(call: Call) -> Reply:
    account = require_account(call)
    task = jobs.require_task(call, jobs.require(call, account))
    return files.file_reply(task["url"], task["_files"], call)
