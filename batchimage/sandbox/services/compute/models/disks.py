"""Managed disks: OS disks made for VMs, empty disks, their state (Attached / Reserved /
Unattached / ActiveSAS, computed from the VMs so it never goes stale), export through a
SAS (grant access writes a fixed VHD page blob into Azurite), and the delete rules."""

from __future__ import annotations

import uuid
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.lro import iso
from batchimage.sandbox.services.compute import errors
from batchimage.sandbox.services.compute.models import blobs, content

NS = "Microsoft.Compute"
TYPE = f"{NS}/disks"
VM_TYPE = f"{NS}/virtualMachines"
GIB = 1024**3


def _tier(sku: str, size_gb: int) -> str:
    letter = {"Premium_LRS": "P", "StandardSSD_LRS": "E"}.get(sku, "S")
    for limit, number in [(4, "1"), (8, "2"), (16, "3"), (32, "4"), (64, "6"), (128, "10")]:
        if size_gb <= limit:
            return f"{letter}{number}"
    return f"{letter}15"


def disk_fields(
    world: World,
    *,
    sku: str,
    size_gb: int,
    creation: dict[str, Any],
    os_type: str | None = None,
    hyper_v_generation: str | None = None,
    content_id: str | None = None,
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "creationData": creation,
        "diskSizeGB": size_gb,
        "diskSizeBytes": size_gb * GIB,
        "uniqueId": str(uuid.uuid4()),
        "timeCreated": iso(world.clock.now()),
        "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        "networkAccessPolicy": "AllowAll",
        "publicNetworkAccess": "Enabled",
        "tier": _tier(sku, size_gb),
    }
    if os_type:
        props["osType"] = os_type
    if hyper_v_generation:
        props["hyperVGeneration"] = hyper_v_generation
    tier = "Premium" if sku.startswith("Premium") else "Standard"
    fields: dict[str, Any] = {"sku": {"name": sku, "tier": tier}, "properties": props}
    if content_id:
        fields["_content"] = content_id
    return fields


def create_os_disk(
    world: World, disk_id: str, location: str, sku: str, disk: dict[str, Any], image_ref: str
) -> dict[str, Any]:
    """Store the managed OS disk of a new VM (Succeeded at once; the VM's LRO covers it)."""
    cid = content.put(world, disk)
    fields = disk_fields(
        world,
        sku=sku,
        size_gb=int(disk["size_gb"]),
        creation={"createOption": "FromImage", "imageReference": {"id": image_ref}},
        os_type=disk["os_type"],
        hyper_v_generation=disk["hyper_v_generation"],
        content_id=cid,
    )
    fields["properties"]["provisioningState"] = "Succeeded"
    record = {
        "id": disk_id,
        "name": disk_id.rsplit("/", 1)[1],
        "type": TYPE,
        "location": location,
        **fields,
    }
    arm.put(world, record)
    return record


def attached_vm(world: World, disk_id: str) -> dict[str, Any] | None:
    """The VM whose OS disk is `disk_id`, if any."""
    key = disk_id.lower()
    for record in arm.resources(world).values():
        if record.get("type") != VM_TYPE:
            continue
        managed = record["properties"]["storageProfile"]["osDisk"].get("managedDisk") or {}
        if str(managed.get("id", "")).lower() == key:
            return record
    return None


def disk_state(world: World, record: dict[str, Any]) -> str:
    if record.get("_sas"):
        return "ActiveSAS"
    vm = attached_vm(world, record["id"])
    if vm is None:
        return "Unattached"
    return "Reserved" if vm.get("_power") in ("deallocated", "deallocating") else "Attached"


def render_disk(world: World, out: dict[str, Any]) -> dict[str, Any]:
    record = arm.get(world, out["id"]) or out
    vm = attached_vm(world, out["id"])
    if vm is not None:
        out["managedBy"] = vm["id"]
    out["properties"]["diskState"] = disk_state(world, record)
    return out


def build_disk(call: Call, existing: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    """PUT of a disk: only `Empty` disks are made directly (OS disks come with their VMs)."""
    props = dict(body.get("properties") or {})
    if existing is not None:
        out = {k: v for k, v in existing.items() if k in ("sku", "properties", "_content")}
        if props.get("diskSizeGB"):
            size = int(props["diskSizeGB"])
            if size < int(existing["properties"]["diskSizeGB"]):
                raise errors.invalid_parameter(
                    "Disk size reduction is not supported. Current size is "
                    f"{existing['properties']['diskSizeGB']} GB, requested size is {size} GB.",
                    "diskSizeGB",
                )
            out["properties"]["diskSizeGB"] = size
            out["properties"]["diskSizeBytes"] = size * GIB
        return out
    creation = dict(props.get("creationData") or {})
    option = str(creation.get("createOption", ""))
    if option.lower() != "empty":
        raise errors.invalid_parameter(
            f"Disk creation option '{option}' is not modelled by the batchimage sandbox (only "
            "Empty; OS disks are made with their VMs).",
            "creationData.createOption",
        )
    if not props.get("diskSizeGB"):
        raise errors.missing("diskSizeGB")
    sku = str((body.get("sku") or {}).get("name") or "Standard_LRS")
    return disk_fields(
        call.world,
        sku=sku,
        size_gb=int(props["diskSizeGB"]),
        creation={"createOption": "Empty"},
        os_type=props.get("osType"),
        hyper_v_generation=props.get("hyperVGeneration"),
    )


def before_delete(call: Call, record: dict[str, Any]) -> None:
    vm = attached_vm(call.world, record["id"])
    if vm is not None:
        raise errors.not_allowed(f"Disk {record['name']} is attached to VM {vm['id']}.")
    if record.get("_sas"):
        raise errors.not_allowed(
            f"Disk {record['name']} is in the 'ActiveSAS' state: revoke its access SAS "
            "(endGetAccess) before deleting it."
        )


def after_delete(world: World, record: dict[str, Any]) -> None:
    sas = record.get("_sas")
    if sas:
        blobs.delete(world, blobs.BlobRef(**sas))
    content.release(world, record.get("_content"))
