"""What a pool request changes, with Batch's refusals: create (id taken, pool quota),
patch, replace properties, resize, enable and evaluate autoscale."""

from __future__ import annotations

import copy
from typing import Any

from batchimage.sandbox.context import Call
from batchimage.sandbox.services.batch_data.errors import (
    batch_error,
    conflict,
    invalid_property,
    invalid_state,
    missing_property,
)
from batchimage.sandbox.services.batch_data.models import allocation, autoscale, pools
from batchimage.sandbox.services.batch_data.models.accounts import Account

DEALLOCATION = ("requeue", "terminate", "taskcompletion", "retaineddata")


def create(call: Call, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    """Add the pool `body` describes to the account and start its allocation."""
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
    return record


def update(call: Call, account: Account, record: dict[str, Any], body: dict[str, Any]) -> None:
    """PATCH: replace the properties given; the empty-pool-only ones need zero nodes and
    are checked, with the pool's others, as a create would check them."""
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
        kept = {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
        merged = {**kept, **asked}
        fresh = pools.validate_create(
            call,
            account,
            {k: merged[k] for k in ("id", *pools.EMPTY_ONLY) if k in merged},
        )
        for name in [*pools.EMPTY_ONLY, "_image_version"]:
            if name in fresh:
                changes[name] = fresh[name]
    record.update(changes)
    pools.changed(call.world, record)


def replace_properties(call: Call, record: dict[str, Any], body: dict[str, Any]) -> None:
    """updateproperties: start task, package references and metadata replaced as a whole."""
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


def resize(call: Call, record: dict[str, Any], body: dict[str, Any]) -> None:
    """Resize to the targets given (a steady pool without autoscale only)."""
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


def enable_autoscale(call: Call, record: dict[str, Any], body: dict[str, Any]) -> None:
    """Enable autoscale (or change its formula or interval) on a pool not being resized."""
    formula = body.get("autoScaleFormula") or record.get("autoScaleFormula")
    if not formula:
        raise missing_property(call, "autoScaleFormula")
    if record["allocationState"] != "steady" and not record["enableAutoScale"]:
        raise conflict(call, "PoolBeingResized", "The specified pool is being resized")
    interval = autoscale.check_interval(
        call, body.get("autoScaleEvaluationInterval") or record.get("autoScaleEvaluationInterval")
    )
    autoscale.enable(call.world, record, autoscale.check_formula(call, formula), interval)


def evaluate_autoscale(call: Call, record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The result of evaluating a formula on a pool with autoscale enabled."""
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
    return autoscale.evaluate(call.world, record, formula)
