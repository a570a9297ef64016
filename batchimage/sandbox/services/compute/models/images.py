"""Managed images (from a generalized VM, or from a VHD blob in Azurite), what the classic
`capture` of an unmanaged-disk VM writes into the `system` container, and managed disk
export (a SAS to a fixed VHD page blob in Azurite): the rules and the timers that end them."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from batchimage.sandbox import arm, lro
from batchimage.sandbox.apierrors import bad_request
from batchimage.sandbox.clock import action
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.services.compute import errors
from batchimage.sandbox.services.compute.models import blobs, content, disks, security, vhd, vms


def _baked(world: World, vm: dict[str, Any]) -> dict[str, Any]:
    """A copy of the VM's disk content with the VM's extensions baked in."""
    disk = copy.deepcopy(vms.disk_content(world, vm))
    names = {e["name"] for e in vms.extensions_of(world, vm)}
    disk["extensions"] = sorted({*disk["extensions"], *names})
    return disk


def _settled(world: World, record: dict[str, Any] | None) -> None:
    """The operation on `record` (if it still exists) has ended."""
    if record is not None:
        record.pop("_op", None)
        world.store.touch()


def _succeeding(
    world: World, record: dict[str, Any] | None, args: dict[str, Any], gone: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(record, operation) of an operation ending well; fails it with `gone` when the
    record was deleted meanwhile."""
    if record is None:
        raise errors.not_allowed(gone)
    record.pop("_op", None)
    return record, lro.operations(world)[args["operation"]]


# -- managed images ----------------------------------------------------------------------


def _image_from_vm(call: Call, source_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    vm = vms.find_vm(call.world, source_id)
    if vm is None:
        raise errors.invalid_parameter(
            f"The source virtual machine '{source_id}' was not found.", "sourceVirtualMachine"
        )
    if not vm.get("_generalized"):
        raise errors.not_allowed(
            f"The operation 'Create Image' requires the Virtual Machine '{vm['name']}' to be "
            "Generalized."
        )
    security.check_managed_image_source(vm)
    disk = _baked(call.world, vm)
    source = vms.os_disk(vm)
    os_disk: dict[str, Any] = {
        "osType": disk["os_type"],
        "osState": "Generalized",
        "caching": source.get("caching", "ReadWrite"),
        "diskSizeGB": int(disk["size_gb"]),
    }
    if source.get("managedDisk"):
        os_disk["managedDisk"] = {"id": source["managedDisk"]["id"]}
        os_disk["storageAccountType"] = source["managedDisk"].get("storageAccountType")
    else:
        os_disk["blobUri"] = source["vhd"]["uri"]
    return os_disk, disk


def _image_from_blob(
    call: Call, requested: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    uri = str(requested["blobUri"])
    ref = blobs.parse(call.world, uri)
    if ref is None:
        raise errors.invalid_parameter(
            f"The URI {uri} does not look to be correct blob URI.", "disk.blobUri"
        )
    if "/" in ref.name:
        raise errors.invalid_parameter(
            f"The blob name in URL {uri} contains a slash. This is presently not supported for "
            "disks.",
            "disk.blobUri",
        )
    if not blobs.exists(call.world, ref):
        raise bad_request(
            "DiskBlobNotFound", f"Unable to find VHD blob with URI {uri} for disk 'osDisk'."
        )
    for key in ("osType", "osState"):
        if not requested.get(key):
            raise errors.missing(f"storageProfile.osDisk.{key}")
    disk = vhd.read(call.world, ref, "osDisk")
    if disk.get("source") is None and not disk["manifest"]:
        disk["os_type"] = requested["osType"]
    os_disk = {
        "osType": requested["osType"],
        "osState": requested["osState"],
        "blobUri": uri,
        "caching": requested.get("caching", "ReadWrite"),
        "diskSizeGB": int(disk["size_gb"]),
    }
    if requested.get("storageAccountType"):
        os_disk["storageAccountType"] = requested["storageAccountType"]
    return os_disk, disk


def build_image(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    if existing is not None:
        return {k: v for k, v in existing.items() if k in ("properties", "_content")}
    props = copy.deepcopy(body.get("properties") or {})
    storage = props.get("storageProfile") or {}
    requested = storage.get("osDisk") or {}
    source_vm = (props.get("sourceVirtualMachine") or {}).get("id")
    if source_vm:
        os_disk, disk = _image_from_vm(call, str(source_vm))
    elif requested.get("blobUri"):
        os_disk, disk = _image_from_blob(call, requested)
    else:
        raise errors.missing("sourceVirtualMachine")
    if storage.get("dataDisks"):
        raise errors.invalid_parameter(
            "Data disks are not modelled by the batchimage sandbox.", "dataDisks"
        )
    props["storageProfile"] = {
        "osDisk": os_disk,
        "dataDisks": [],
        "zoneResilient": bool(storage.get("zoneResilient", False)),
    }
    props["hyperVGeneration"] = props.get("hyperVGeneration") or disk["hyper_v_generation"]
    disk["hyper_v_generation"] = props["hyperVGeneration"]
    return {"properties": props, "_content": content.put(call.world, disk)}


def image_after_delete(world: World, record: dict[str, Any]) -> None:
    content.release(world, record.get("_content"))


# -- capture (unmanaged-disk VMs) --------------------------------------------------------


def check_capture(world: World, vm: dict[str, Any]) -> None:
    """Raise Azure's error unless the VM can be captured: blob based disks, generalized."""
    if vms.vhd_ref(world, vm) is None:
        raise errors.not_allowed(
            "The Capture action is only supported on a Virtual Machine with blob based disks. "
            "Please use the 'Image' resource APIs to create an Image from a managed Virtual "
            "Machine."
        )
    if not vm.get("_generalized"):
        raise errors.not_allowed(
            "Capture operation cannot be completed because the VM is not generalized."
        )


def capture_template(
    vm: dict[str, Any], image_uri: str, vhd_uri: str, disk_name: str
) -> dict[str, Any]:
    """The ARM template Azure returns from capture (and stores beside the VHD)."""
    os_disk = vms.os_disk(vm)
    return {
        "$schema": "http://schema.management.azure.com/schemas/2014-04-01-preview/VM.json",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "vmName": {"type": "string"},
            "vmSize": {
                "type": "string",
                "defaultValue": vm["properties"]["hardwareProfile"]["vmSize"],
            },
            "adminUserName": {"type": "string"},
            "adminPassword": {"type": "securestring"},
            "networkInterfaceId": {"type": "string"},
        },
        "resources": [
            {
                "apiVersion": "2015-06-15",
                "properties": {
                    "hardwareProfile": {"vmSize": "[parameters('vmSize')]"},
                    "storageProfile": {
                        "osDisk": {
                            "osType": os_disk.get("osType", "Linux"),
                            "name": disk_name,
                            "createOption": "FromImage",
                            "image": {"uri": image_uri},
                            "vhd": {"uri": vhd_uri},
                            "caching": os_disk.get("caching", "ReadWrite"),
                        }
                    },
                    "osProfile": {
                        "computerName": "[parameters('vmName')]",
                        "adminUsername": "[parameters('adminUsername')]",
                        "adminPassword": "[parameters('adminPassword')]",
                    },
                    "networkProfile": {
                        "networkInterfaces": [{"id": "[parameters('networkInterfaceId')]"}]
                    },
                },
                "name": "[parameters('vmName')]",
                "type": "Microsoft.Compute/virtualMachines",
                "location": vm["location"],
            }
        ],
    }


@action("compute.captured")
def _captured(world: World, args: dict[str, Any]) -> None:
    gone = "The virtual machine was deleted during the capture."
    vm, op = _succeeding(world, vms.find_vm(world, args["vm"]), args, gone)
    source = vms.vhd_ref(world, vm)
    assert source is not None
    guid = str(uuid.uuid4())
    folder = f"Microsoft.Compute/Images/{args['container']}"
    disk_name = f"{args['prefix']}-osDisk.{guid}.vhd"
    image = blobs.BlobRef(source.account, "system", f"{folder}/{disk_name}")
    vhd.write(world, image, _baked(world, vm))
    target = f"{world.blob_endpoint(source.account)}vmcontainer{guid}/osDisk.{guid}.vhd"
    template = capture_template(vm, image.url(world), target, disk_name)
    template_blob = blobs.BlobRef(
        source.account, "system", f"{folder}/{args['prefix']}-vmTemplate.{guid}.json"
    )
    blobs.blob_client(world, template_blob).upload_blob(json.dumps(template, indent=2))
    op["result"] = template
    world.store.touch()


@action("compute.capture_failed")
def _capture_failed(world: World, args: dict[str, Any]) -> None:
    _settled(world, vms.find_vm(world, args["vm"]))


# -- disk export -------------------------------------------------------------------------


def check_grant(world: World, record: dict[str, Any]) -> None:
    """Raise Azure's error when the disk is attached to a VM that is not deallocated."""
    vm = disks.attached_vm(world, record["id"])
    if vm is not None and vm.get("_power") not in ("deallocated", "deallocating"):
        raise errors.not_allowed(
            f"Access not permitted because disk {record['name']} is currently attached to "
            f"running VM {vm['id']}."
        )


@action("compute.access_granted")
def _access_granted(world: World, args: dict[str, Any]) -> None:
    gone = "The disk was deleted while access was being granted."
    record, op = _succeeding(world, arm.get(world, args["id"]), args, gone)
    ref = blobs.BlobRef(**record["_sas"]) if record.get("_sas") else blobs.new_export_ref()
    disk = content.of(world, record) or content.normalise(
        {
            "os_type": record["properties"].get("osType", "Linux"),
            "size_gb": record["properties"]["diskSizeGB"],
        }
    )
    vhd.write(world, ref, disk)
    record["_sas"] = {"account": ref.account, "container": ref.container, "name": ref.name}
    op["result"] = {"accessSAS": blobs.sas_url(world, ref, int(args["seconds"]))}
    world.store.touch()


@action("compute.access_failed")
def _access_failed(world: World, args: dict[str, Any]) -> None:
    _settled(world, arm.get(world, args["id"]))


@action("compute.access_revoked")
def _access_revoked(world: World, args: dict[str, Any]) -> None:
    record = arm.get(world, args["id"])
    if record is None:
        return
    record.pop("_op", None)
    sas = record.pop("_sas", None)
    if sas:
        blobs.delete(world, blobs.BlobRef(**sas))
    world.store.touch()
