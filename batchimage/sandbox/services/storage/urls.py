"""Microsoft.Storage routes."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.arm import ResourceType
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.routing import Route
from batchimage.sandbox.services.storage import models
from batchimage.sandbox.services.storage import responses as r


def _patch(call: Call, record: dict[str, Any], body: dict[str, Any]) -> None:
    merged = {
        "location": record["location"],
        "kind": body.get("kind", record["kind"]),
        "sku": body.get("sku", record["sku"]),
        "properties": body.get("properties") or {},
    }
    record.update(models.build_account(call, record, merged))


def _provisioned(world: World, record: dict[str, Any]) -> None:
    models.publish(world, record)


STORAGE_ACCOUNTS = ResourceType(
    models.NS,
    "storageAccounts",
    "StorageAccounts",
    models.build_account,
    "storage",
    check_name=models.check_name,
    put_style="location",
    delete_style="sync",
    create_state="Creating",
    update_state="Succeeded",
    render=models.render_account,
    after_provisioned=_provisioned,
    tag_name_max=128,
    after_delete=models.unpublish,
    patch=_patch,
)

ITEM = STORAGE_ACCOUNTS.item_path

ROUTES = [
    Route("GET", ITEM, r.get_account, "StorageAccounts_GetProperties"),
    Route("POST", ITEM + "/listKeys", r.list_keys, "StorageAccounts_ListKeys", write=False),
    Route("POST", ITEM + "/regenerateKey", r.regenerate_key, "StorageAccounts_RegenerateKey"),
    Route(
        "POST",
        "/subscriptions/{subscription}/providers/Microsoft.Storage/checkNameAvailability",
        r.check_name,
        "StorageAccounts_CheckNameAvailability",
        write=False,
    ),
    *STORAGE_ACCOUNTS.routes(),
]
