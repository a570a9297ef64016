"""Microsoft.Batch management state and rules: Batch accounts (pool allocation mode,
quotas, auto-storage) whose `accountEndpoint` is the sandbox's Batch data plane for the
account: `127.0.0.1:<port>/batch/<account>` (clients prepend `https://`).

`find_account(world, name)` is how the Batch data plane (another service) finds the
account a `/batch/<account>/...` request is for.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import bad_request
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.lro import iso

NS = "Microsoft.Batch"
TYPE = f"{NS}/batchAccounts"
MODES = ("BatchService", "UserSubscription")
_NAME = re.compile(r"[a-z0-9]{3,24}")
VM_FAMILIES = (
    "standardDv3Family",
    "standardDv4Family",
    "standardDv5Family",
    "standardDSv3Family",
    "standardEv5Family",
    "standardFSv2Family",
    "standardNCFamily",
)


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise bad_request(
            "AccountNameInvalid",
            f"Account name '{name}' is invalid. Batch account names must be 3 to 24 characters "
            "long and use numbers and lower-case letters only.",
        )


def find_account(world: World, name: str) -> dict[str, Any] | None:
    """The Batch account called `name` (Batch account names are unique per region)."""
    for record in arm.resources(world).values():
        if record.get("type") == TYPE and record["name"].lower() == name.lower():
            return record
    return None


def account_fields(
    world: World, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """Properties for a create/update body; the allocation mode cannot change."""
    old = (existing or {}).get("properties", {})
    asked = body.get("properties") or {}
    mode = asked.get("poolAllocationMode") or old.get("poolAllocationMode") or "BatchService"
    if mode not in MODES:
        raise bad_request(
            "InvalidPoolAllocationMode",
            f"The pool allocation mode '{mode}' is not valid; use BatchService or "
            "UserSubscription.",
        )
    if existing is not None and mode != old.get("poolAllocationMode"):
        raise bad_request(
            "PropertyChangeNotAllowed", "Changing property 'poolAllocationMode' is not allowed."
        )
    props: dict[str, Any] = {k: v for k, v in old.items() if k != "provisioningState"}
    props["poolAllocationMode"] = mode
    props["publicNetworkAccess"] = (
        asked.get("publicNetworkAccess") or old.get("publicNetworkAccess") or "Enabled"
    )
    props["allowedAuthenticationModes"] = (
        asked.get("allowedAuthenticationModes")
        or old.get("allowedAuthenticationModes")
        or ["SharedKey", "AAD", "TaskAuthenticationToken"]
    )
    if asked.get("keyVaultReference"):
        props["keyVaultReference"] = asked["keyVaultReference"]
    auto = asked.get("autoStorage")
    if auto and auto.get("storageAccountId"):
        props["autoStorage"] = {
            "storageAccountId": auto["storageAccountId"],
            "lastKeySync": iso(world.clock.now()),
            "authenticationMode": auto.get("authenticationMode", "StorageKeys"),
        }
    props["poolQuota"] = 100
    props["activeJobAndJobScheduleQuota"] = 300
    if mode == "BatchService":
        props.setdefault("dedicatedCoreQuota", 500)
        props.setdefault("lowPriorityCoreQuota", 500)
        props["dedicatedCoreQuotaPerVMFamilyEnforced"] = True
        props.setdefault(
            "dedicatedCoreQuotaPerVMFamily",
            [{"name": family, "coreQuota": 100} for family in VM_FAMILIES],
        )
    out: dict[str, Any] = {
        "properties": props,
        "identity": body.get("identity") or (existing or {}).get("identity") or {"type": "None"},
    }
    return out


def build_account(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    return account_fields(call.world, body, existing)


def provision(world: World, item: dict[str, Any]) -> str:
    """Make sure Batch account `item["name"]` exists (default UserSubscription mode)."""
    check_name(item["name"])
    rid = arm.resource_id(item["subscription"], item["group"], NS, "batchAccounts", item["name"])
    if arm.get(world, rid) is None:
        props: dict[str, Any] = {
            "poolAllocationMode": item.get("pool_allocation_mode", "UserSubscription")
        }
        if item.get("auto_storage"):
            props["autoStorage"] = {"storageAccountId": item["auto_storage"]}
        arm.put_ready(
            world,
            item["group"],
            NS,
            "batchAccounts",
            item["name"],
            account_fields(world, {"properties": props}, None),
            subscription=item["subscription"],
            location=item["location"],
        )
    return rid


def render_account(world: World, out: dict[str, Any]) -> dict[str, Any]:
    """The account endpoint is computed at read time (the sandbox's port can change)."""
    host = urlparse(world.base_url).netloc
    out["properties"]["accountEndpoint"] = f"{host}/batch/{out['name']}"
    out["properties"]["nodeManagementEndpoint"] = f"{host}/batch/{out['name']}/nodemanagement"
    return out
