"""Handlers for pools: create, get, exists, list, delete, patch, replace properties,
resize, stop resize, enable / disable / evaluate autoscale."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.batch_data import allocation, autoscale, pools, wire
from batchimage.sandbox.services.batch_data.accounts import require_account
from batchimage.sandbox.services.batch_data.errors import (
    batch_error,
    conflict,
    invalid_property,
    invalid_state,
    missing_property,
)

DEALLOCATION = ("requeue", "terminate", "taskcompletion", "retaineddata")


def _writable(call: Call) -> dict[str, Any]:
    """The path's pool for a write: exists, not deleting, conditional headers met."""
    record = pools.require(call, require_account(call), writing=True)
    wire.check_conditions(call, record, reading=False)
    return record


def create_pool(call: Call) -> Reply:
    account = require_account(call)
    body = wire.body(call)
    record = pools.validate_create(call, account, body)
    formula = interval = None
    if record["enableAutoScale"]:
        if not body.get("autoScaleFormula"):
            raise missing_property(call, "autoScaleFormula")
        formula = autoscale.check_formula(call, body["autoScaleFormula"])
        interval = autoscale.check_interval(call, body.get("autoScaleEvaluationInterval"))
    existing = pools.find(call.world, account, record["id"])
    if existing is not None and existing["state"] == "deleting":
        raise conflict(
            call,
            "PoolBeingDeleted",
            "The specified pool has been marked for deletion and is being reclaimed.",
        )
    if existing is not None:
        raise conflict(call, "PoolExists", "The specified pool already exists.")
    if len(pools.in_account(call.world, account)) >= int(account.properties.get("poolQuota", 100)):
        raise conflict(call, "PoolQuotaReached", "Pool quota for the account has been reached.")
    pools.table(call.world)[pools.key(account, record["id"])] = record
    if formula is not None and interval is not None:
        autoscale.enable(call.world, record, formula, interval)
    else:
        allocation.resize(
            call.world, record, record["targetDedicatedNodes"], record["targetLowPriorityNodes"]
        )
    return wire.reply(201, None, record)


def get_pool(call: Call) -> Reply:
    account = require_account(call)
    record = pools.require(call, account)
    wire.check_conditions(call, record, reading=True)
    return wire.reply(200, wire.select(call, _odata(call, pools.render(record))), record)


def _odata(call: Call, item: dict[str, Any]) -> dict[str, Any]:
    base = call.path.split("/pools", 1)[0]
    return {"odata.metadata": f"{call.world.base_url}{base}/$metadata#pools/@Element", **item}


def pool_exists(call: Call) -> Reply:
    account = require_account(call)
    record = pools.require(call, account)
    wire.check_conditions(call, record, reading=True)
    return wire.reply(200, None, record)


def list_pools(call: Call) -> Reply:
    account = require_account(call)
    items = [pools.render(r) for r in pools.in_account(call.world, account)]
    return wire.page(call, wire.filter_items(call, items), f"{account.url(call.world)}/pools")


def delete_pool(call: Call) -> Reply:
    record = _writable(call)
    allocation.delete(call.world, record)
    return wire.reply(202, None)


def update_pool(call: Call) -> Reply:
    """PATCH: replace the properties given; the empty-pool-only ones need zero nodes."""
    record = _writable(call)
    body = wire.body(call)
    changes: dict[str, Any] = {}
    if body.get("startTask") is not None:
        changes["startTask"] = pools.start_task(call, body["startTask"])
    if body.get("metadata") is not None:
        changes["metadata"] = pools.metadata(call, body["metadata"])
    if body.get("applicationPackageReferences") is not None:
        changes["applicationPackageReferences"] = body["applicationPackageReferences"]
    asked = {k: body[k] for k in pools.EMPTY_ONLY if body.get(k) is not None}
    if asked and record["_nodes"]:
        raise invalid_state(
            call,
            f"{', '.join(sorted(asked))} can be updated only when the pool has no nodes "
            "(resize it to 0 first).",
        )
    if asked:
        merged = {**pools.render(record), **asked}
        fresh = pools.validate_create(
            call,
            require_account(call),
            {k: merged[k] for k in ("id", *pools.EMPTY_ONLY) if k in merged},
        )
        for name in [*pools.EMPTY_ONLY, "_image_version"]:
            if name in fresh:
                changes[name] = fresh[name]
    record.update(changes)
    pools.changed(call.world, record)
    return wire.reply(200, None, record)


def replace_properties(call: Call) -> Reply:
    """updateproperties: start task, package references and metadata replaced as a whole."""
    record = _writable(call)
    body = wire.body(call)
    for name in ("applicationPackageReferences", "metadata"):
        if body.get(name) is None:
            raise missing_property(call, name)
    if body.get("startTask") is not None:
        record["startTask"] = pools.start_task(call, body["startTask"])
    else:
        record.pop("startTask", None)
    record["applicationPackageReferences"] = list(body["applicationPackageReferences"])
    record["metadata"] = pools.metadata(call, body["metadata"])
    if not record["applicationPackageReferences"]:
        record.pop("applicationPackageReferences")
    pools.changed(call.world, record)
    return wire.reply(204, None, record)


def resize_pool(call: Call) -> Reply:
    record = _writable(call)
    body = wire.body(call)
    if record["enableAutoScale"]:
        raise invalid_state(
            call, "The pool is configured for automatic scaling; disable autoscale first."
        )
    if record["allocationState"] != "steady":
        raise conflict(call, "PoolBeingResized", "The specified pool is being resized")
    option = body.get("nodeDeallocationOption")
    if option is not None and str(option).lower() not in DEALLOCATION:
        raise invalid_property(call, "nodeDeallocationOption", option, "Unknown option.")
    dedicated = pools.target(
        call,
        "targetDedicatedNodes",
        body.get("targetDedicatedNodes", record["targetDedicatedNodes"]),
    )
    low = pools.target(
        call,
        "targetLowPriorityNodes",
        body.get("targetLowPriorityNodes", record["targetLowPriorityNodes"]),
    )
    if body.get("resizeTimeout") is not None:
        record["resizeTimeout"] = pools.resize_timeout(call, body["resizeTimeout"])
    allocation.resize(call.world, record, dedicated, low)
    pools.changed(call.world, record)
    return wire.reply(202, None, record)


def stop_resize(call: Call) -> Reply:
    record = _writable(call)
    allocation.stop(call.world, record)
    return wire.reply(202, None, record)


def enable_autoscale(call: Call) -> Reply:
    record = _writable(call)
    body = wire.body(call)
    formula = body.get("autoScaleFormula") or record.get("autoScaleFormula")
    if not formula:
        raise missing_property(call, "autoScaleFormula")
    if record["allocationState"] != "steady" and not record["enableAutoScale"]:
        raise conflict(call, "PoolBeingResized", "The specified pool is being resized")
    interval = autoscale.check_interval(
        call, body.get("autoScaleEvaluationInterval") or record.get("autoScaleEvaluationInterval")
    )
    autoscale.enable(call.world, record, autoscale.check_formula(call, formula), interval)
    return wire.reply(200, None, record)


def disable_autoscale(call: Call) -> Reply:
    record = _writable(call)
    autoscale.disable(call.world, record)
    return wire.reply(200, None, record)


def evaluate_autoscale(call: Call) -> Reply:
    account = require_account(call)
    record = pools.require(call, account)
    body = wire.body(call)
    if not body.get("autoScaleFormula"):
        raise missing_property(call, "autoScaleFormula")
    if not record["enableAutoScale"]:
        raise batch_error(
            call,
            409,
            "OperationInvalidForCurrentState",
            "The specified operation is not valid for the current state of the resource.",
            {"Reason": "Autoscale is not enabled on the pool; enable it to evaluate formulas."},
        )
    formula = autoscale.check_formula(call, body["autoScaleFormula"])
    return wire.reply(200, autoscale.evaluate(call.world, record, formula))
