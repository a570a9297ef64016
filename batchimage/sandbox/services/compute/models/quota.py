"""vCPU quota: what a subscription uses per region (allocated VMs: not deallocated; and the
VMs other services make in the subscription, such as the nodes of a user-subscription
Batch account) and the check a VM create, resize or start must pass, failing like Azure
with 409 OperationNotAllowed and the quota message.

Another service adds its VMs with `register_usage_source(source)`: `source(world,
subscription, location)` lists `(vm size, spot, count)` of the VMs it holds there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute import errors, settings
from batchimage.sandbox.services.compute.models import catalog

VM_TYPE = "microsoft.compute/virtualmachines"

UsageSource = Callable[[World, str, str], "list[tuple[str, bool, int]]"]
_SOURCES: list[UsageSource] = []


@dataclass(frozen=True)
class Usage:
    cores: int
    vms: int
    families: dict[str, int]
    spot: int = 0  # Spot (low-priority) vCPUs: their own quota, not `cores` or a family


def register_usage_source(source: UsageSource) -> None:
    """Count the VMs another service holds in a subscription's regions (idempotent)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def allocated(record: dict[str, Any]) -> bool:
    """Whether a VM holds its cores (everything but deallocated / deallocating)."""
    return record.get("_power") not in ("deallocated", "deallocating")


def usage(world: World, subscription: str, location: str, skip: str = "") -> Usage:
    """Cores, VMs and cores per family in use in `location` (VM `skip` left out)."""
    prefix = f"/subscriptions/{subscription}/".lower()
    cores, vms, spot = 0, 0, 0
    families: dict[str, int] = {}
    held: list[tuple[str, bool, int]] = []
    for key, record in arm.resources(world).items():
        if not key.startswith(prefix) or record.get("type", "").lower() != VM_TYPE:
            continue
        if record["location"] != location or key == skip.lower():
            continue
        vms += 1
        if allocated(record):
            held.append((record["properties"]["hardwareProfile"]["vmSize"], False, 1))
    for source in _SOURCES:
        held += source(world, subscription, location)
    for size_name, is_spot, count in held:
        found = catalog.size(size_name)
        if found is None:
            continue
        if is_spot:
            spot += found.vcpus * count
            continue
        cores += found.vcpus * count
        families[found.family] = families.get(found.family, 0) + found.vcpus * count
    return Usage(cores, vms, families, spot)


def exceeded(what: str, location: str, limit: int, used: int, needed: int) -> ApiError:
    """409 OperationNotAllowed: `needed` more vCPUs of quota `what` do not fit."""
    return errors.not_allowed(
        f"Operation could not be completed as it results in exceeding approved {what} quota. "
        f"Additional details - Deployment Model: Resource Manager, Location: {location}, "
        f"Current Limit: {limit}, Current Usage: {used}, Additional Required: {needed}, "
        f"(Minimum) New Limit Required: {used + needed}. Submit a request for Quota increase "
        "at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView"
        " by specifying parameters listed in the 'Details' section for deployment to succeed. "
        "Please read more about quota limits at "
        "https://docs.microsoft.com/en-us/azure/azure-supportability/per-vm-quota-requests"
    )


def check(world: World, subscription: str, location: str, size_name: str, skip: str = "") -> None:
    """Raise the quota error unless one more VM of `size_name` fits in `location`."""
    size = catalog.size(size_name)
    if size is None:
        return
    now = usage(world, subscription, location, skip)
    family_limit = settings.quota_limit(world, size.family, location)
    family_used = now.families.get(size.family, 0)
    if family_used + size.vcpus > family_limit:
        raise exceeded(
            f"{size.family} Cores", location, family_limit, family_used, size.vcpus
        ) from None
    cores_limit = settings.quota_limit(world, "cores", location)
    if now.cores + size.vcpus > cores_limit:
        raise exceeded(
            "Total Regional Cores", location, cores_limit, now.cores, size.vcpus
        ) from None


def usages(world: World, subscription: str, location: str) -> list[dict[str, Any]]:
    """The `locations/{location}/usages` list: total cores, VMs, Spot cores, each family."""
    now = usage(world, subscription, location)

    def item(value: str, label: str, current: int) -> dict[str, Any]:
        return {
            "unit": "Count",
            "currentValue": current,
            "limit": settings.quota_limit(world, value, location),
            "name": {"value": value, "localizedValue": label},
        }

    out = [
        item("cores", "Total Regional vCPUs", now.cores),
        item("virtualMachines", "Virtual Machines", now.vms),
        item("lowPriorityCores", "Total Regional Low-priority vCPUs", now.spot),
    ]
    for family in catalog.families():
        label = family.removeprefix("standard").removesuffix("Family")
        out.append(item(family, f"Standard {label} Family vCPUs", now.families.get(family, 0)))
    return out
