"""Microsoft.Storage state and rules: storage accounts (name rules, global uniqueness,
kind/sku, keys) and the accounts Azurite must serve (`blob_accounts` table: name ->
"key1:key2"; the server hands Azurite the new set inside the request that changed it)."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError, bad_request, conflict
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.lro import iso

NS = "Microsoft.Storage"
TYPE = f"{NS}/storageAccounts"
KINDS = ("Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage")
SKUS = (
    "Standard_LRS",
    "Standard_GRS",
    "Standard_RAGRS",
    "Standard_ZRS",
    "Premium_LRS",
    "Premium_ZRS",
    "Standard_GZRS",
    "Standard_RAGZRS",
)
GEO_SKUS = ("Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS")
PAIRED = {
    "eastus": "westus",
    "eastus2": "centralus",
    "westus2": "westcentralus",
    "westeurope": "northeurope",
    "northeurope": "westeurope",
    "japaneast": "japanwest",
}
_NAME = re.compile(r"[a-z0-9]{3,24}")
UNSERVED = ("dfs", "file", "queue", "table", "web")


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def blob_accounts(world: World) -> dict[str, Any]:
    return world.store.table("blob_accounts")


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise bad_request(
            "AccountNameInvalid",
            f"{name} is not a valid storage account name. Storage account name must be between 3 "
            "and 24 characters in length and use numbers and lower-case letters only.",
        )


def invalid_values(*names: str) -> ApiError:
    """400 InvalidValuesForRequestParameters, Storage's answer to a kind, sku or key name it
    does not take (hashicorp/terraform-provider-azurerm#8089, Azure/azure-cli#27899)."""
    return bad_request(
        "InvalidValuesForRequestParameters",
        f"Values for request parameters are invalid: {', '.join(names)}. For more information, "
        "see - https://aka.ms/storageaccounttypes",
    )


def accounts_named(world: World, name: str) -> list[dict[str, Any]]:
    """Storage accounts called `name` anywhere in the sandbox (names are global in Azure)."""
    return [
        r
        for r in arm.resources(world).values()
        if r.get("type") == TYPE and r["name"].lower() == name.lower()
    ]


def check_unique(call: Call, rid: str, name: str) -> None:
    for other in accounts_named(call.world, name):
        if other["id"].lower() == rid.lower():
            continue
        same_sub = (
            other["id"].lower().startswith(f"/subscriptions/{call.params['subscription']}/".lower())
        )
        if same_sub:
            raise conflict(
                "StorageAccountAlreadyExists",
                f"The storage account named {name} already exists under the subscription.",
            )
        raise conflict(
            "StorageAccountAlreadyTaken", f"The storage account named {name} is already taken."
        )


def _sku(body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, str]:
    sku = body.get("sku") or (existing or {}).get("sku")
    if not sku or not sku.get("name"):
        raise bad_request(
            "InvalidRequestContent", "The value of the required property 'sku' is missing."
        )
    if sku["name"] not in SKUS:
        raise invalid_values("sku")
    return {
        "name": sku["name"],
        "tier": "Premium" if sku["name"].startswith("Premium") else "Standard",
    }


def build_account(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    """The stored account for a create/update request (checks global name uniqueness)."""
    rid = arm.resource_id(
        call.params["subscription"],
        call.params["group"],
        NS,
        "storageAccounts",
        call.params["name"],
    )
    check_unique(call, rid, call.params["name"])
    return account_fields(call.world, body, existing)


def account_fields(
    world: World, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    """kind, sku, properties and keys for a create/update body (keys and times are kept)."""
    kind = body.get("kind") or (existing or {}).get("kind")
    if not kind:
        raise bad_request(
            "InvalidRequestContent", "The value of the required property 'kind' is missing."
        )
    if kind not in KINDS:
        raise invalid_values("kind")
    sku = _sku(body, existing)
    old = (existing or {}).get("properties", {})
    props = {k: v for k, v in old.items() if k != "provisioningState"}
    props.update(body.get("properties") or {})
    now = iso(world.clock.now())
    location = arm.norm_location(body["location"])
    props.setdefault("creationTime", now)
    props.setdefault("keyCreationTime", {"key1": now, "key2": now})
    props.setdefault("supportsHttpsTrafficOnly", True)
    props.setdefault("minimumTlsVersion", "TLS1_2")
    props.setdefault("allowBlobPublicAccess", False)
    props.setdefault("accountMigrationInProgress", False)
    props.setdefault("isSkuConversionBlocked", False)
    if kind in ("StorageV2", "BlobStorage"):
        props.setdefault("accessTier", "Hot")
    acls = props.get("networkAcls") or {}
    props["networkAcls"] = {
        "bypass": acls.get("bypass", "AzureServices"),
        "defaultAction": acls.get("defaultAction", "Allow"),
        "ipRules": acls.get("ipRules", []),
        "virtualNetworkRules": acls.get("virtualNetworkRules", []),
        **(
            {"resourceAccessRules": acls["resourceAccessRules"]}
            if acls.get("resourceAccessRules")
            else {}
        ),
    }
    services = {"enabled": True, "keyType": "Account", "lastEnabledTime": props["creationTime"]}
    props.setdefault(
        "encryption",
        {"keySource": NS, "services": {"blob": dict(services), "file": dict(services)}},
    )
    props["primaryLocation"] = location
    props["statusOfPrimary"] = "available"
    if sku["name"] in GEO_SKUS:
        props["secondaryLocation"] = PAIRED.get(location, "westus")
        props["statusOfSecondary"] = "available"
    else:
        for key in ("secondaryLocation", "statusOfSecondary"):
            props.pop(key, None)
    out: dict[str, Any] = {"sku": sku, "kind": kind, "properties": props}
    out["_keys"] = (existing or {}).get("_keys") or {"key1": new_key(), "key2": new_key()}
    return out


def render_account(world: World, out: dict[str, Any]) -> dict[str, Any]:
    """Endpoints are computed at read time: the blob endpoint is Azurite's for this account."""
    name = out["name"]
    props = out["properties"]
    endpoints: dict[str, Any] = {"blob": world.blob_endpoint(name)}
    for svc in UNSERVED:
        endpoints[svc] = f"https://{name}.{svc}.sandbox.invalid/"
    routing = props.get("routingPreference") or {}
    if routing.get("publishMicrosoftEndpoints"):
        endpoints["microsoftEndpoints"] = {
            "blob": world.blob_endpoint(name),
            **{svc: f"https://{name}-microsoftrouting.{svc}.sandbox.invalid/" for svc in UNSERVED},
        }
    if routing.get("publishInternetEndpoints"):
        endpoints["internetEndpoints"] = {
            "blob": world.blob_endpoint(name),
            **{
                svc: f"https://{name}-internetrouting.{svc}.sandbox.invalid/"
                for svc in ("dfs", "file", "web")
            },
        }
    props["primaryEndpoints"] = endpoints
    return out


def geo_stats(world: World, record: dict[str, Any]) -> dict[str, Any]:
    return {"status": "Live", "lastSyncTime": iso(world.clock.now() - 600), "canFailover": True}


def keys(world: World, record: dict[str, Any]) -> dict[str, Any]:
    stamps = record["properties"].get("keyCreationTime", {})
    return {
        "keys": [
            {
                "keyName": name,
                "value": value,
                "permissions": "FULL",
                "creationTime": stamps.get(name),
            }
            for name, value in sorted(record["_keys"].items())
        ]
    }


def regenerate(world: World, record: dict[str, Any], key_name: str) -> None:
    if key_name not in record["_keys"]:
        raise invalid_values("keyName")
    record["_keys"][key_name] = new_key()
    record["properties"].setdefault("keyCreationTime", {})[key_name] = iso(world.clock.now())
    publish(world, record)


def publish(world: World, record: dict[str, Any]) -> None:
    """Let Azurite serve this account with its current keys."""
    k = record["_keys"]
    blob_accounts(world)[record["name"]] = f"{k['key1']}:{k['key2']}"
    world.store.touch()


def unpublish(world: World, record: dict[str, Any]) -> None:
    if not accounts_named(world, record["name"]):
        blob_accounts(world).pop(record["name"], None)
        world.store.touch()


def provision(world: World, item: dict[str, Any]) -> str:
    """Make sure storage account `item["name"]` exists (`account_kind` default StorageV2,
    `sku` default Standard_LRS)."""
    check_name(item["name"])
    rid = arm.resource_id(item["subscription"], item["group"], NS, "storageAccounts", item["name"])
    if arm.get(world, rid) is None:
        if accounts_named(world, item["name"]):
            raise conflict(
                "StorageAccountAlreadyTaken",
                f"The storage account named {item['name']} is already taken.",
            )
        body = {
            "location": item["location"],
            "kind": item.get("account_kind", "StorageV2"),
            "sku": {"name": item.get("sku", "Standard_LRS")},
        }
        record = arm.put_ready(
            world,
            item["group"],
            NS,
            "storageAccounts",
            item["name"],
            account_fields(world, body, None),
            subscription=item["subscription"],
            location=item["location"],
        )
        publish(world, record)
    return rid


def name_availability(world: World, name: str) -> dict[str, Any]:
    try:
        check_name(name)
    except ApiError as err:
        return {"nameAvailable": False, "reason": "AccountNameInvalid", "message": err.message}
    if accounts_named(world, name):
        return {
            "nameAvailable": False,
            "reason": "AlreadyExists",
            "message": f"The storage account named {name} is already taken.",
        }
    return {"nameAvailable": True}
