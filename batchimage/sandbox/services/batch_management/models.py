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
from batchimage.sandbox.services.authorization.models import grant_batch_data
from batchimage.sandbox.services.batch_management import quotas

NS = "Microsoft.Batch"
TYPE = f"{NS}/batchAccounts"
MODES = ("BatchService", "UserSubscription")
_NAME = re.compile(r"[a-z0-9]{3,24}")


def check_name(name: str) -> None:
    """400 for a name Batch refuses. No code is published for it: the sandbox answers ARM's
    generic BadRequest (docs/azure-behaviours.md, Error codes)."""
    if not _NAME.fullmatch(name):
        raise bad_request(
            "BadRequest",
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
        raise bad_request(  # no published code: ARM's generic one for a value it cannot take
            "InvalidRequestContent",
            f"The pool allocation mode '{mode}' is not valid; use BatchService or "
            "UserSubscription.",
        )
    if existing is not None and mode != old.get("poolAllocationMode"):
        raise bad_request(
            "PropertyChangeNotAllowed", "Changing property 'poolAllocationMode' is not allowed."
        )
    computed = {"provisioningState", *quotas.FIELDS}  # quotas are computed when read
    props: dict[str, Any] = {k: v for k, v in old.items() if k not in computed}
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
    found = arm.get(world, rid)
    props_now = (found or {}).get("properties") or {}
    if found is not None and item.get("auto_storage") and not props_now.get("autoStorage"):
        props_now["autoStorage"] = {"storageAccountId": item["auto_storage"]}  # asked for now
        arm.put(world, {**found, "properties": props_now})
    if found is None:
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
    grant_batch_data(world, rid)  # an existing account its user may run jobs on
    return rid


def properties(world: World, record: dict[str, Any]) -> dict[str, Any]:
    """The account's properties with its quotas (computed: they follow the sandbox config)."""
    props: dict[str, Any] = dict(record.get("properties") or {})
    props.update(quotas.quotas(world, record))
    return props


def render_account(world: World, out: dict[str, Any]) -> dict[str, Any]:
    """The account endpoint (the sandbox's port can change) and quotas are computed at read
    time."""
    host = urlparse(world.base_url).netloc
    props = properties(world, out)
    props["accountEndpoint"] = f"{host}/batch/{out['name']}"
    props["nodeManagementEndpoint"] = f"{host}/batch/{out['name']}/nodemanagement"
    out["properties"] = props
    return out
