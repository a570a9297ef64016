"""Pools on the wire: create, get, exists, list, delete, patch, replace properties, resize,
stop resize, enable / disable / evaluate autoscale, and the pool as Batch returns it."""

from __future__ import annotations

import copy
from typing import Any

from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.batch_data import wire
from batchimage.sandbox.services.batch_data.models import allocation, autoscale, pool_changes, pools
from batchimage.sandbox.services.batch_data.models.accounts import require_account


def render_pool(record: dict[str, Any]) -> dict[str, Any]:
    """The pool as Batch returns it."""
    out = {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
    dedicated, low = pools.counts(record)
    out.update(
        {
            "eTag": wire.etag(record["_modified"]),
            "lastModified": wire.stamp(record["_modified"]),
            "creationTime": wire.stamp(record["_created"]),
            "stateTransitionTime": wire.stamp(record["_state_at"]),
            "allocationStateTransitionTime": wire.stamp(record["_alloc_at"]),
            "currentDedicatedNodes": dedicated,
            "currentLowPriorityNodes": low,
        }
    )
    order = [
        "id", "displayName", "url", "eTag", "lastModified", "creationTime", "state",
        "stateTransitionTime", "allocationState", "allocationStateTransitionTime", "vmSize",
    ]  # fmt: skip
    return {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}


def _writable(call: Call) -> dict[str, Any]:
    """The path's pool for a write: exists, not deleting, conditional headers met."""
    record = pools.require(call, require_account(call), writing=True)
    wire.check_conditions(call, record, reading=False)
    return record


def create_pool(call: Call) -> Reply:
    record = pool_changes.create(call, require_account(call), wire.body(call))
    return wire.reply(201, None, record)


def get_pool(call: Call) -> Reply:
    account = require_account(call)
    record = pools.require(call, account)
    wire.check_conditions(call, record, reading=True)
    return wire.reply(200, wire.select(call, _odata(call, render_pool(record))), record)


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
    items = [render_pool(r) for r in pools.in_account(call.world, account)]
    return wire.page(call, wire.filter_items(call, items), f"{account.url(call.world)}/pools")


def delete_pool(call: Call) -> Reply:
    record = _writable(call)
    allocation.delete(call.world, record)
    return wire.reply(202, None)


def update_pool(call: Call) -> Reply:
    """PATCH: replace the properties given; the empty-pool-only ones need zero nodes."""
    record = _writable(call)
    pool_changes.update(call, require_account(call), record, wire.body(call))
    return wire.reply(200, None, record)


def replace_properties(call: Call) -> Reply:
    """updateproperties: start task, package references and metadata replaced as a whole."""
    record = _writable(call)
    pool_changes.replace_properties(call, record, wire.body(call))
    return wire.reply(204, None, record)


def resize_pool(call: Call) -> Reply:
    record = _writable(call)
    pool_changes.resize(call, record, wire.body(call))
    return wire.reply(202, None, record)


def stop_resize(call: Call) -> Reply:
    record = _writable(call)
    allocation.stop(call.world, record)
    return wire.reply(202, None, record)


def enable_autoscale(call: Call) -> Reply:
    record = _writable(call)
    pool_changes.enable_autoscale(call, record, wire.body(call))
    return wire.reply(200, None, record)


def disable_autoscale(call: Call) -> Reply:
    record = _writable(call)
    autoscale.disable(call.world, record)
    return wire.reply(200, None, record)


def evaluate_autoscale(call: Call) -> Reply:
    record = pools.require(call, require_account(call))
    return wire.reply(200, pool_changes.evaluate_autoscale(call, record, wire.body(call)))
