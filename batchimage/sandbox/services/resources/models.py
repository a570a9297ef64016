"""Microsoft.Resources state: subscriptions, resource groups (cascade delete), and
resource provider registration per subscription."""

from __future__ import annotations

import re
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError, bad_request, conflict, not_found
from batchimage.sandbox.clock import action, schedule
from batchimage.sandbox.context import World
from batchimage.sandbox.services.authorization.models import own_subscription

# Resource types the sandbox's providers report (a catalogue, not a promise that every
# type is modelled; see docs/sandbox.md for what is).
PROVIDER_TYPES: dict[str, list[str]] = {
    "Microsoft.Resources": ["resourceGroups", "subscriptions", "providers"],
    "Microsoft.Network": [
        "virtualNetworks",
        "virtualNetworks/subnets",
        "networkSecurityGroups",
        "publicIPAddresses",
        "networkInterfaces",
        "locations/operations",
        "locations/operationResults",
    ],
    "Microsoft.Storage": ["storageAccounts", "locations/asyncoperations", "checkNameAvailability"],
    "Microsoft.Batch": [
        "batchAccounts",
        "batchAccounts/pools",
        "locations/accountOperationResults",
    ],
    "Microsoft.Compute": [
        "virtualMachines",
        "virtualMachines/extensions",
        "virtualMachines/runCommands",
        "disks",
        "images",
        "galleries",
        "galleries/images",
        "galleries/images/versions",
        "locations/publishers",
        "locations/usages",
        "locations/operations",
        "skus",
    ],
}
ALWAYS_REGISTERED = {"microsoft.resources"}
# The sandbox's regions (those of its compute catalogue, data/marketplace.json): name ->
# (display name, geography group), as Subscriptions - List Locations gives them.
REGIONS: dict[str, tuple[str, str]] = {
    "eastus": ("East US", "US"),
    "eastus2": ("East US 2", "US"),
    "westus": ("West US", "US"),
    "westus2": ("West US 2", "US"),
    "centralus": ("Central US", "US"),
    "westeurope": ("West Europe", "Europe"),
    "northeurope": ("North Europe", "Europe"),
    "japaneast": ("Japan East", "Asia Pacific"),
}
LOCATIONS = [display for display, _ in REGIONS.values()]

_GROUP_NAME = re.compile(r"[-\w._()]{1,90}")
_GROUP_CHAR = re.compile(r"[-\w._()]")


def subscription_record(world: World, subscription: str) -> dict[str, Any]:
    record: dict[str, Any] = arm.subscriptions(world)[subscription.lower()]
    return record


def add_subscription(world: World, subscription: str, display_name: str, registered: bool) -> None:
    """Make `subscription` known; its providers start Registered or NotRegistered."""
    arm.subscriptions(world)[subscription.lower()] = {
        "id": f"/subscriptions/{subscription}",
        "subscriptionId": subscription,
        "tenantId": world.identity.tenant_id,
        "displayName": display_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
    }
    own_subscription(world, subscription)  # the sandbox's principal owns what it is given
    state = "Registered" if registered else "NotRegistered"
    world.store.table("providers")[subscription.lower()] = {
        ns.lower(): ("Registered" if ns.lower() in ALWAYS_REGISTERED else state)
        for ns in PROVIDER_TYPES
    }
    world.store.touch()


def location_records(subscription: str) -> list[dict[str, Any]]:
    """The subscription's regions as Subscriptions - List Locations renders them (the
    GetLocations example of Azure/azure-rest-api-specs, Microsoft.Resources 2022-12-01)."""
    return [
        {
            "id": f"/subscriptions/{subscription}/locations/{name}",
            "name": name,
            "type": "Region",
            "displayName": display,
            "regionalDisplayName": f"({geography}) {display}",
            "metadata": {
                "regionType": "Physical",
                "regionCategory": "Recommended",
                "geographyGroup": geography,
            },
        }
        for name, (display, geography) in REGIONS.items()
    ]


def check_group_name(name: str) -> None:
    """400 InvalidResourceGroup for a name ARM refuses (1-90 word characters, '-', '.', '(',
    ')'; no '.' at the end). ARM's text names the invalid characters (Azure/azure-cli#14481);
    for a length or a trailing period no text is published, so the sandbox words it."""
    if _GROUP_NAME.fullmatch(name) and not name.endswith("."):
        return
    bad = "".join(dict.fromkeys(c for c in name if not _GROUP_CHAR.fullmatch(c)))
    reason = (
        f"has these invalid characters: '{bad}'"
        if bad
        else "must be 1 to 90 characters long and must not end with a period"
    )
    raise bad_request(
        "InvalidResourceGroup",
        f"The provided resource group name '{name}' {reason}. The name can only be a letter, "
        "digit, '-', '.', '(', ')' or '_'.",
    )


def put_group(
    world: World, subscription: str, name: str, body: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Create or update a group; returns (record, created)."""
    check_group_name(name)
    location = body.get("location")
    if not location:
        raise bad_request(
            "LocationRequired", "The location property is required for this definition."
        )
    arm.check_tags(body.get("tags"))
    existing = arm.get(world, arm.group_id(subscription, name))
    if existing is not None:
        if existing["properties"]["provisioningState"] == "Deleting":
            raise conflict(
                "ResourceGroupBeingDeleted",
                f"The resource group '{existing['name']}' is in deprovisioning state and cannot "
                "perform this operation.",
            )
        if arm.norm_location(location) != existing["location"]:
            raise conflict(
                "InvalidResourceGroupLocation",
                f"Invalid resource group location '{arm.norm_location(location)}'. The Resource "
                f"group already exists in location '{existing['location']}'.",
            )
        if body.get("tags") is not None:
            existing["tags"] = dict(body["tags"])
        arm.put(world, existing)
        return existing, False
    record: dict[str, Any] = {
        "id": arm.group_id(subscription, name),
        "name": name,
        "type": arm.GROUP_TYPE,
        "location": arm.norm_location(location),
        "properties": {"provisioningState": "Succeeded"},
    }
    if body.get("tags") is not None:
        record["tags"] = dict(body["tags"])
    if body.get("managedBy"):
        record["managedBy"] = body["managedBy"]
    arm.put(world, record)
    return record, True


def provision_group(world: World, item: dict[str, Any]) -> str:
    """Make sure group `item["name"]` exists (rehearsal prerequisites); returns its id."""
    sub = item["subscription"]
    if sub.lower() not in arm.subscriptions(world):
        add_subscription(world, sub, sub, True)
    rid = arm.group_id(sub, item["name"])
    if arm.get(world, rid) is None:
        put_group(world, sub, item["name"], {"location": item["location"]})
    return rid


def group_members(world: World, group: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource inside `group` (top-level and nested)."""
    prefix = group["id"].lower() + "/providers/"
    return [r for k, r in sorted(arm.resources(world).items()) if k.startswith(prefix)]


@action("resources.group_deleted")
def group_deleted(world: World, args: dict[str, Any]) -> None:
    """The end of a group delete: the group and everything in it are gone."""
    arm.remove(world, args["id"])


@action("resources.group_delete_failed")
def group_delete_failed(world: World, args: dict[str, Any]) -> None:
    record = arm.get(world, args["id"])
    if record is not None:
        record["properties"]["provisioningState"] = "Succeeded"
        world.store.touch()


def provider_states(world: World, subscription: str) -> dict[str, str]:
    table: dict[str, str] = world.store.table("providers").setdefault(subscription.lower(), {})
    return table


def provider_record(world: World, subscription: str, namespace: str) -> dict[str, Any]:
    """A provider as ARM renders it; 404 InvalidResourceNamespace for unknown namespaces."""
    canonical = next((ns for ns in PROVIDER_TYPES if ns.lower() == namespace.lower()), None)
    if canonical is None:
        raise not_found(
            "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid."
        )
    state = provider_states(world, subscription).get(canonical.lower(), "NotRegistered")
    return {
        "id": f"/subscriptions/{subscription}/providers/{canonical}",
        "namespace": canonical,
        "registrationState": state,
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": [
            {"resourceType": t, "locations": list(LOCATIONS), "apiVersions": []}
            for t in PROVIDER_TYPES[canonical]
        ],
    }


def set_registration(
    world: World, subscription: str, namespace: str, register: bool
) -> dict[str, Any]:
    """Start (un)registering a provider; it settles after `provider.register` seconds."""
    record = provider_record(world, subscription, namespace)
    ns = record["namespace"]
    if ns.lower() in ALWAYS_REGISTERED:
        return record
    states = provider_states(world, subscription)
    target = "Registered" if register else "NotRegistered"
    if states.get(ns.lower()) != target:
        states[ns.lower()] = "Registering" if register else "Unregistering"
        schedule(
            world,
            world.config.duration("provider.register", 30.0),
            "resources.provider_settled",
            {"subscription": subscription, "namespace": ns, "state": target},
        )
    world.store.touch()
    return provider_record(world, subscription, ns)


@action("resources.provider_settled")
def provider_settled(world: World, args: dict[str, Any]) -> None:
    provider_states(world, args["subscription"])[args["namespace"].lower()] = args["state"]
    world.store.touch()


def require_registered(world: World, subscription: str, namespace: str) -> None:
    """409 MissingSubscriptionRegistration unless `namespace` is registered (as ARM does)."""
    if provider_states(world, subscription).get(namespace.lower()) != "Registered":
        raise ApiError(
            409,
            "MissingSubscriptionRegistration",
            f"The subscription is not registered to use namespace '{namespace}'. See "
            "https://aka.ms/rps-not-found for how to register subscriptions.",
        )
