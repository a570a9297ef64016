"""vCPU quota: what a subscription uses per region (allocated VMs: not deallocated) and
the check a VM create, resize or start must pass, failing like Azure with
409 OperationNotAllowed and the quota message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute import catalog, errors, settings

VM_TYPE = "microsoft.compute/virtualmachines"


@dataclass(frozen=True)
class Usage:
    cores: int
    vms: int
    families: dict[str, int]


def allocated(record: dict[str, Any]) -> bool:
    """Whether a VM holds its cores (everything but deallocated / deallocating)."""
    return record.get("_power") not in ("deallocated", "deallocating")


def usage(world: World, subscription: str, location: str, skip: str = "") -> Usage:
    """Cores, VMs and cores per family in use in `location` (VM `skip` left out)."""
    prefix = f"/subscriptions/{subscription}/".lower()
    cores, vms = 0, 0
    families: dict[str, int] = {}
    for key, record in arm.resources(world).items():
        if not key.startswith(prefix) or record.get("type", "").lower() != VM_TYPE:
            continue
        if record["location"] != location or key == skip.lower():
            continue
        vms += 1
        if not allocated(record):
            continue
        found = catalog.size(record["properties"]["hardwareProfile"]["vmSize"])
        if found is not None:
            cores += found.vcpus
            families[found.family] = families.get(found.family, 0) + found.vcpus
    return Usage(cores, vms, families)


def _exceeded(what: str, location: str, limit: int, used: int, needed: int) -> Exception:
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
    family_limit = settings.quota_limit(world, size.family)
    family_used = now.families.get(size.family, 0)
    if family_used + size.vcpus > family_limit:
        raise _exceeded(
            f"{size.family} Cores", location, family_limit, family_used, size.vcpus
        ) from None
    cores_limit = settings.quota_limit(world, "cores")
    if now.cores + size.vcpus > cores_limit:
        raise _exceeded(
            "Total Regional Cores", location, cores_limit, now.cores, size.vcpus
        ) from None


def usages(world: World, subscription: str, location: str) -> list[dict[str, Any]]:
    """The `locations/{location}/usages` list: total cores, VMs, then each family."""
    now = usage(world, subscription, location)

    def item(value: str, label: str, current: int) -> dict[str, Any]:
        return {
            "unit": "Count",
            "currentValue": current,
            "limit": settings.quota_limit(world, value),
            "name": {"value": value, "localizedValue": label},
        }

    out = [
        item("cores", "Total Regional vCPUs", now.cores),
        item("virtualMachines", "Virtual Machines", now.vms),
    ]
    for family in catalog.families():
        label = family.removeprefix("standard").removesuffix("Family")
        out.append(item(family, f"Standard {label} Family vCPUs", now.families.get(family, 0)))
    return out
