"""Batch pools: the stored records (`batch_pools` table, keyed `<account>/<pool id>`,
case-insensitive like Batch ids), create-time validation, updates and rendering.

Allocation (target counts -> nodes) lives in `allocation`, nodes in `nodes`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from batchimage.sandbox.context import Call, World
from batchimage.sandbox.services.batch_data.errors import (
    batch_error,
    conflict,
    invalid_property,
    missing_property,
    not_found,
)
from batchimage.sandbox.services.batch_data.models import catalog, images, timers
from batchimage.sandbox.services.batch_data.models.accounts import Account
from batchimage.sandbox.services.batch_data.wire import duration, iso_duration

TABLE = "batch_pools"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MIN_RESIZE_TIMEOUT = 300.0
# Properties PATCH may change only while the pool has no nodes (Batch API 2025-06-01).
EMPTY_ONLY = (
    "displayName",
    "vmSize",
    "enableInterNodeCommunication",
    "virtualMachineConfiguration",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "networkConfiguration",
    "userAccounts",
    "mountConfiguration",
    "upgradePolicy",
)
CREATE_COPIED = (
    "displayName",
    "networkConfiguration",
    "applicationPackageReferences",
    "userAccounts",
    "mountConfiguration",
    "upgradePolicy",
)


def table(world: World) -> dict[str, Any]:
    return world.store.table(TABLE)


def key(account: Account | str, pool_id: str) -> str:
    name = account if isinstance(account, str) else account.name
    return f"{name.lower()}/{pool_id.lower()}"


def find(world: World, account: Account, pool_id: str) -> dict[str, Any] | None:
    record: dict[str, Any] | None = table(world).get(key(account, pool_id))
    return record


def require(call: Call, account: Account, *, writing: bool = False) -> dict[str, Any]:
    """The path's pool; 404 PoolNotFound; 409 PoolBeingDeleted for writes while deleting."""
    record = find(call.world, account, call.params["pool"])
    if record is None:
        raise not_found(call, "PoolNotFound", "pool")
    if writing and record["state"] == "deleting":
        raise conflict(
            call,
            "PoolBeingDeleted",
            "The specified pool has been marked for deletion and is being reclaimed.",
        )
    return record


def in_account(world: World, account: Account) -> list[dict[str, Any]]:
    prefix = account.key + "/"
    return [r for k, r in sorted(table(world).items()) if k.startswith(prefix)]


def changed(world: World, record: dict[str, Any]) -> None:
    """Mark `record` modified now (new ETag / Last-Modified)."""
    record["_modified"] = timers.now(world)
    world.store.touch()


def set_state(world: World, record: dict[str, Any], state: str) -> None:
    """Change the pool state (not a change of pool-level data: ETag stays)."""
    record["state"] = state
    record["_state_at"] = timers.now(world)
    world.store.touch()


def set_allocation(world: World, record: dict[str, Any], state: str) -> None:
    """Change the allocation state (ETag and lastModified stay, as on Azure)."""
    record["allocationState"] = state
    record["_alloc_at"] = timers.now(world)
    world.store.touch()


# -- create ---------------------------------------------------------------------------


def validate_create(call: Call, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    """A new pool record from a create body (allocation not started yet)."""
    pool_id = body.get("id")
    if not pool_id:
        raise missing_property(call, "id")
    if not isinstance(pool_id, str) or not _ID.fullmatch(pool_id):
        raise invalid_property(
            call,
            "id",
            pool_id,
            "The id can contain any combination of alphanumeric characters, hyphens and "
            "underscores, and cannot contain more than 64 characters.",
        )
    size = _vm_size(call, body)
    vmc = _vm_configuration(call, account, body)
    version = vmc.pop("_version", None)
    now = call.clock.now()
    record: dict[str, Any] = {
        "id": pool_id,
        "url": f"{account.url(call.world)}/pools/{pool_id}",
        "state": "active",
        "allocationState": "steady",
        "vmSize": size.name,
        "virtualMachineConfiguration": vmc,
        "resizeTimeout": "PT15M",
        "targetDedicatedNodes": 0,
        "targetLowPriorityNodes": 0,
        "enableAutoScale": bool(body.get("enableAutoScale", False)),
        "enableInterNodeCommunication": bool(body.get("enableInterNodeCommunication", False)),
        "taskSlotsPerNode": _slots(call, body.get("taskSlotsPerNode", 1), size),
        "taskSchedulingPolicy": body.get("taskSchedulingPolicy") or {"nodeFillType": "spread"},
        "_account": account.name,
        "_created": now,
        "_modified": now,
        "_state_at": now,
        "_alloc_at": now,
        "_nodes": {},
        "_resize": 0,
        "_image_version": version,
    }
    for name in CREATE_COPIED:
        if body.get(name) is not None:
            record[name] = copy.deepcopy(body[name])
    if body.get("startTask") is not None:
        record["startTask"] = start_task(call, body["startTask"])
    if body.get("metadata") is not None:
        record["metadata"] = metadata(call, body["metadata"])
    if body.get("resizeTimeout") is not None:
        record["resizeTimeout"] = resize_timeout(call, body["resizeTimeout"])
    if not record["enableAutoScale"]:
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            record[name] = target(call, name, body.get(name, 0))
    else:
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if body.get(name) is not None:
                raise invalid_property(
                    call,
                    name,
                    body[name],
                    f"{name} must not be specified when enableAutoScale is true.",
                )
    return record


def _vm_size(call: Call, body: dict[str, Any]) -> catalog.VmSize:
    name = body.get("vmSize")
    if not name:
        raise missing_property(call, "vmSize")
    size = catalog.vm_size(str(name))
    if size is None:
        raise invalid_property(
            call,
            "vmSize",
            name,
            "The specified VM size is not a valid Azure VM size (e.g. Standard_D2s_v3).",
        )
    return size


def _vm_configuration(call: Call, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    vmc = body.get("virtualMachineConfiguration")
    if not isinstance(vmc, dict):
        raise missing_property(call, "virtualMachineConfiguration")
    vmc = copy.deepcopy(vmc)
    ref = vmc.get("imageReference")
    if not isinstance(ref, dict):
        raise missing_property(call, "virtualMachineConfiguration.imageReference")
    agent = vmc.get("nodeAgentSKUId")
    if not agent:
        raise missing_property(call, "virtualMachineConfiguration.nodeAgentSKUId")
    if str(agent).lower() not in catalog.agent_ids():
        raise invalid_property(
            call,
            "virtualMachineConfiguration.nodeAgentSKUId",
            agent,
            "The specified node agent SKU id is not supported; list supported images for "
            "the valid ones.",
        )
    image_id = ref.get("virtualMachineImageId")
    marketplace = [k for k in ("publisher", "offer", "sku") if ref.get(k)]
    if image_id and marketplace:
        raise invalid_property(
            call,
            "virtualMachineConfiguration.imageReference",
            image_id,
            "virtualMachineImageId is mutually exclusive with publisher, offer and sku.",
        )
    if image_id:
        vmc["_version"] = images.check_gallery_image(call, account, str(image_id))
    elif len(marketplace) == 3:
        ref.setdefault("version", "latest")
    else:
        missing = next(k for k in ("publisher", "offer", "sku") if not ref.get(k))
        raise missing_property(call, f"virtualMachineConfiguration.imageReference.{missing}")
    return vmc


def _slots(call: Call, value: Any, size: catalog.VmSize) -> int:
    most = min(4 * size.cores, 256)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise invalid_property(
            call,
            "taskSlotsPerNode",
            value,
            f"taskSlotsPerNode must be between 1 and {most} for VM size {size.name}.",
        )
    return value


def target(call: Call, name: str, value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid_property(call, name, value, f"{name} must be a non-negative integer.")
    return value


def resize_timeout(call: Call, value: Any) -> str:
    seconds = duration(call, "resizeTimeout", value)
    if seconds < MIN_RESIZE_TIMEOUT:
        raise invalid_property(
            call, "resizeTimeout", value, "The resize timeout must be at least 5 minutes."
        )
    return iso_duration(seconds)


def start_task(call: Call, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value.get("commandLine"):
        raise missing_property(call, "startTask.commandLine")
    task = copy.deepcopy(value)
    task.setdefault("maxTaskRetryCount", 0)
    task.setdefault("waitForSuccess", True)
    return task


def metadata(call: Call, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise invalid_property(call, "metadata", value, "metadata must be a list.")
    out = []
    for item in value:
        if not isinstance(item, dict) or not item.get("name"):
            raise batch_error(
                call,
                400,
                "EmptyMetadataKey",
                "The key for one of the metadata key-value pairs is empty.",
            )
        out.append({"name": str(item["name"]), "value": str(item.get("value", ""))})
    return out


# -- render ---------------------------------------------------------------------------


def counts(record: dict[str, Any]) -> tuple[int, int]:
    """(current dedicated, current low-priority) nodes."""
    nodes = record["_nodes"].values()
    dedicated = sum(1 for n in nodes if n["isDedicated"])
    return dedicated, len(record["_nodes"]) - dedicated
