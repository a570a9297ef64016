"""Handlers for jobs and tasks (create, get, list, delete; task files)."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.batch_data import jobs, node_routes, wire
from batchimage.sandbox.services.batch_data.accounts import require_account


def create_job(call: Call) -> Reply:
    account = require_account(call)
    record = jobs.create(call, account, wire.body(call))
    return wire.reply(201, None, record)


def get_job(call: Call) -> Reply:
    account = require_account(call)
    record = jobs.require(call, account)
    wire.check_conditions(call, record, reading=True)
    return wire.reply(200, wire.select(call, jobs.render(record)), record)


def list_jobs(call: Call) -> Reply:
    account = require_account(call)
    prefix = account.key + "/"
    items = [
        jobs.render(r) for k, r in sorted(jobs.table(call.world).items()) if k.startswith(prefix)
    ]
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


def add_task_collection(call: Call) -> Reply:
    """addtaskcollection: each task added or reported with its error (status 200)."""
    account = require_account(call)
    job = jobs.require(call, account, writing=True)
    results: list[dict[str, Any]] = []
    for item in wire.body(call).get("value") or []:
        try:
            task = jobs.add_task(call, job, item)
        except ApiError as exc:
            error: dict[str, Any] = {
                "code": exc.code,
                "message": {"lang": "en-US", "value": exc.message},
            }
            if exc.values:
                error["values"] = exc.values
            results.append({"status": "clienterror", "taskId": item.get("id"), "error": error})
            continue
        results.append(
            {
                "status": "success",
                "taskId": task["id"],
                "eTag": wire.etag(task["_modified"]),
                "lastModified": wire.stamp(task["_modified"]),
                "location": task["url"],
            }
        )
    return wire.reply(200, {"value": results})


def list_tasks(call: Call) -> Reply:
    account = require_account(call)
    job = jobs.require(call, account)
    items = [jobs.render(t) for t in sorted(job["_tasks"].values(), key=lambda t: t["_seq"])]
    return wire.page(call, wire.filter_items(call, items), f"{job['url']}/tasks")


def get_task(call: Call) -> Reply:
    account = require_account(call)
    task = jobs.require_task(call, jobs.require(call, account))
    return wire.reply(200, wire.select(call, jobs.render(task)), task)


def list_task_files(call: Call) -> Reply:
    account = require_account(call)
    task = jobs.require_task(call, jobs.require(call, account))
    return node_routes.list_files(task["url"], task["_files"], call)


def get_task_file(call: Call) -> Reply:
    account = require_account(call)
    task = jobs.require_task(call, jobs.require(call, account))
    return node_routes.file_reply(task["url"], task["_files"], call)
