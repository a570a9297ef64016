"""Virtual machines: create (checks, quota, OS disk managed or as a VHD page blob in
Azurite, NIC attachment), update, render with instance view, and what a delete leaves.

Internal keys of a VM record: `_content` (its OS disk content), `_power` (starting,
running, stopping, stopped, deallocating, deallocated), `_generalized`, `_user_data`,
`_agent` ("stopped" once the guest agent stopped; see `agent`).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from batchimage.sandbox import arm, clock
from batchimage.sandbox.apierrors import ApiError, bad_request, conflict
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.lro import iso
from batchimage.sandbox.services.compute import errors, settings
from batchimage.sandbox.services.compute.models import (
    blobs,
    catalog,
    content,
    disks,
    quota,
    security,
    vhd,
    vm_inputs,
)

NS = "Microsoft.Compute"
TYPE = f"{NS}/virtualMachines"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
EXTENSION_TYPE = f"{TYPE}/extensions"
AGENT_VERSION = {"Linux": "2.12.0.2", "Windows": "2.7.41491.1130"}


def vm_id(call: Call) -> str:
    p = call.params
    return arm.resource_id(p["subscription"], p["group"], NS, "virtualMachines", p["name"])


def os_disk(record: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = record["properties"]["storageProfile"]["osDisk"]
    return found


def managed_disk_id(record: dict[str, Any]) -> str | None:
    managed = os_disk(record).get("managedDisk") or {}
    return str(managed["id"]) if managed.get("id") else None


def vhd_ref(world: World, record: dict[str, Any]) -> blobs.BlobRef | None:
    """The OS disk's VHD blob for an unmanaged-disk VM."""
    uri = (os_disk(record).get("vhd") or {}).get("uri")
    return blobs.parse(world, uri) if uri else None


def disk_content(world: World, record: dict[str, Any]) -> dict[str, Any]:
    """The VM's OS disk content (the managed disk's, or the VM's own for a VHD)."""
    disk_id = managed_disk_id(record)
    holder = arm.get(world, disk_id) if disk_id else record
    found = content.of(world, holder) or content.of(world, record)
    if found is None:
        found = content.normalise({"os_type": os_disk(record).get("osType", "Linux")})
    return found


def save_disk(world: World, record: dict[str, Any]) -> None:
    """After the guest changed its disk: rewrite the VHD blob of an unmanaged-disk VM."""
    ref = vhd_ref(world, record)
    if ref is not None:
        vhd.write(world, ref, disk_content(world, record))
    world.store.touch()


# -- create / update ---------------------------------------------------------------------


def _nics(call: Call, profile: dict[str, Any] | None, location: str, vid: str) -> list[dict]:
    items = (profile or {}).get("networkInterfaces") or []
    if not items:
        raise errors.missing("networkProfile")
    out = []
    for item in items:
        nic = arm.get(call.world, str(item.get("id", "")))
        if nic is None or nic.get("type") != NIC_TYPE:
            raise bad_request(
                "InvalidResourceReference",
                f"Resource {item.get('id')} referenced by resource {vid} was not found. Please "
                "make sure that the referenced resource exists, and that both resources are in "
                "the same region.",
            )
        if nic["location"] != location:
            raise errors.invalid_parameter(
                f"The network interface {nic['id']} is in location '{nic['location']}', but the "
                f"virtual machine is in '{location}'. They must be in the same location.",
                "networkInterfaces",
            )
        user = (nic["properties"].get("virtualMachine") or {}).get("id")
        if user and user.lower() != vid.lower():
            raise bad_request(
                "NicInUse",
                f"Network Interface {nic['id']} is used by existing resource {user}. In order "
                "to create a virtual machine with this network interface, it must be "
                "dissociated from the resource.",
            )
        entry: dict[str, Any] = {"id": nic["id"]}
        if item.get("properties"):
            entry["properties"] = dict(item["properties"])
        out.append(entry)
    if len(out) > 1 and not any((n.get("properties") or {}).get("primary") for n in out):
        raise errors.invalid_parameter(
            "Virtual machine must have one network interface set as Primary.", "networkProfile"
        )
    return out


def _unmanaged_target(call: Call, uri: str, location: str, disk_name: str) -> blobs.BlobRef:
    from batchimage.sandbox.services.storage import models as storage

    ref = blobs.parse(call.world, uri)
    if ref is None:
        raise errors.invalid_parameter(
            f"The URI {uri} does not look to be correct blob URI of a storage account of this "
            "cloud.",
            "osDisk.vhd.uri",
        )
    accounts = storage.accounts_named(call.world, ref.account)
    if not accounts or accounts[0]["location"] != location:
        raise _storage_not_found(ref.account)
    if blobs.exists(call.world, ref):
        raise conflict(
            "Conflict",
            f"Blob {uri} already exists. Please provide a different blob URI as target for disk "
            f"'{disk_name}'.",
        )
    return ref


def _check_unmanaged(world: World, image: vm_inputs.ResolvedImage) -> None:
    """An unmanaged OS disk: refused by a cloud that retired them (public Azure since 31
    March 2026) and by an image that disallows them (Gen2 marketplace images report
    `disallowed.vmDiskType: Unmanaged`); sources in docs/azure-behaviours.md, Disks."""
    if world.config.cloud == "public":
        raise bad_request(
            "BadRequest", "Unmanaged disks have been retired. Please migrate to Managed Disks."
        )
    if image.disallowed_disk.lower() == "unmanaged":
        raise bad_request(
            "BadRequest",
            "The specified platform image is not supported for creating a Virtual Machine with "
            "unmanaged disks. Please refer to the disallowed VM disk types at "
            "https://docs.microsoft.com/en-us/rest/api/compute/virtualmachineimages/get"
            "#vmdisktypes.",
        )


def _storage_not_found(account: str) -> ApiError:
    return errors.invalid_parameter(
        f"Storage account {account} not found. Ensure storage account is not deleted and "
        "belongs to the same Azure location as the VM.",
        "osDisk.vhd.uri",
    )


def _check_generation(size: catalog.VmSize, generation: str) -> None:
    if generation not in size.hyper_v_generations.split(","):
        raise bad_request(
            "BadRequest",
            f"The selected VM size '{size.name}' cannot boot Hypervisor Generation "
            f"'{generation[-1]}'. If this was a Create operation please check that the "
            "Hypervisor Generation of the Image matches the Hypervisor Generation of the "
            "selected VM Size.",
        )


def image_error(
    world: World, image_id: str, location: str, size_name: str, *, security: str
) -> ApiError | None:
    """What a VM create in `location` answers for image `image_id` on VM size `size_name`
    with security type `security` (the image is not there, the size cannot boot its Hyper-V
    generation, the image's security type refuses the VM's), or None when all fit. Batch
    relays it for the VMs of a pool (its "Provider Error Json")."""
    try:
        image = vm_inputs.resolve_image(world, {"id": image_id}, location)
        size = catalog.size(size_name)
        if size is not None:
            _check_generation(size, image.content["hyper_v_generation"])
    except ApiError as err:
        return err
    return security_check(security, image)


def security_check(requested: str, image: vm_inputs.ResolvedImage) -> ApiError | None:
    """The refusal of a VM of security type `requested` from `image`, or None."""
    return security.check_vm_image(requested, image.security, capable=image.trusted_capable)


def build_vm(call: Call, existing: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    """The stored VM for a PUT (create: every check first, then the OS disk and NICs)."""
    if existing is not None:
        return _update(call, existing, body)
    world = call.world
    props = copy.deepcopy(body.get("properties") or {})
    location = arm.norm_location(body["location"])
    vid = vm_id(call)
    name = call.params["name"]
    size = vm_inputs.check_size((props.get("hardwareProfile") or {}).get("vmSize"), location)
    storage = props.get("storageProfile") or {}
    requested = dict(storage.get("osDisk") or {})
    option = str(requested.get("createOption") or "FromImage")
    if option.lower() != "fromimage":
        raise errors.invalid_parameter(
            f"OS disk create option '{option}' is not modelled by the batchimage sandbox (only "
            "FromImage).",
            "osDisk.createOption",
        )
    if storage.get("dataDisks"):
        raise errors.invalid_parameter(
            "Data disks are not modelled by the batchimage sandbox.", "dataDisks"
        )
    image = vm_inputs.resolve_image(world, storage.get("imageReference"), location)
    vm_inputs.check_plan(image, body.get("plan"), vid)
    _check_generation(size, image.content["hyper_v_generation"])
    refused = security_check(security.vm_security({"properties": props}), image)
    if refused is not None:
        raise refused
    if (requested.get("vhd") or {}).get("uri"):
        _check_unmanaged(world, image)
    nics = _nics(call, props.get("networkProfile"), location, vid)
    profile = vm_inputs.os_profile(props.get("osProfile"), image.os_type, name)
    quota.check(world, call.params["subscription"], location, size.name)
    image_gb = int(image.content["size_gb"])
    size_gb = int(requested.get("diskSizeGB") or image_gb)
    if size_gb < image_gb:
        raise errors.invalid_parameter(
            f"The specified disk size {size_gb} GB is smaller than the size of the corresponding "
            f"disk in the VM image: {image_gb} GB. This is not allowed. Please choose equal or "
            "greater size or do not specify an explicit size.",
            "osDisk.diskSizeGB",
        )
    image.content["size_gb"] = size_gb
    disk_name = str(requested.get("name") or f"{name}_OsDisk_1_{uuid.uuid4().hex}")
    out_disk: dict[str, Any] = {
        "osType": image.os_type,
        "name": disk_name,
        "createOption": "FromImage",
        "caching": requested.get("caching", "ReadWrite"),
        "diskSizeGB": size_gb,
        "deleteOption": requested.get("deleteOption", "Detach"),
    }
    fields: dict[str, Any] = {"_power": "starting", "_generalized": False}
    if (requested.get("vhd") or {}).get("uri"):
        uri = str(requested["vhd"]["uri"])
        ref = _unmanaged_target(call, uri, location, disk_name)
        out_disk["vhd"] = {"uri": uri}
        out_disk["deleteOption"] = "Detach"
        fields["_content"] = content.put(world, image.content)
        vhd.write(world, ref, image.content)
    else:
        disk_id = arm.resource_id(
            call.params["subscription"], call.params["group"], NS, "disks", disk_name
        )
        if arm.get(world, disk_id) is not None:
            raise conflict(
                "Conflict",
                f"Disk {disk_name} already exists in resource group "
                f"{call.params['group'].upper()}. Only CreateOption.Attach is supported.",
            )
        managed = dict(requested.get("managedDisk") or {})
        sku = str(
            managed.get("storageAccountType")
            or ("Premium_LRS" if size.premium_io else "Standard_LRS")
        )
        image_ref = image.reference.get("id") or _platform_image_id(call, location, image.reference)
        disks.create_os_disk(world, disk_id, location, sku, image.content, image_ref)
        out_disk["managedDisk"] = {"storageAccountType": sku, "id": disk_id}
    for nic in nics:
        record = arm.get(world, nic["id"])
        assert record is not None
        record["properties"]["virtualMachine"] = {"id": vid}
    props["hardwareProfile"] = {**(props.get("hardwareProfile") or {}), "vmSize": size.name}
    props["storageProfile"] = {
        "imageReference": image.reference,
        "osDisk": out_disk,
        "dataDisks": [],
        "diskControllerType": "SCSI",
    }
    props["osProfile"] = profile
    props["networkProfile"] = {"networkInterfaces": nics}
    props.setdefault("securityProfile", {"securityType": "Standard"})
    props.setdefault("extensionsTimeBudget", "PT1H30M")
    props["vmId"] = str(uuid.uuid4())
    props["timeCreated"] = iso(world.clock.now())
    if "userData" in props:
        fields["_user_data"] = props.pop("userData")
    fields["properties"] = props
    fields["etag"] = '"1"'
    for key in ("plan", "zones", "identity", "extendedLocation"):
        if body.get(key):
            fields[key] = copy.deepcopy(body[key])
    world.store.touch()
    return fields


def _platform_image_id(call: Call, location: str, ref: dict[str, Any]) -> str:
    return (
        f"/Subscriptions/{call.params['subscription']}/Providers/Microsoft.Compute/Locations/"
        f"{location}/Publishers/{ref['publisher']}/ArtifactTypes/VMImage/Offers/{ref['offer']}/"
        f"Skus/{ref['sku']}/Versions/{ref['exactVersion']}"
    )


_KEPT = ("storageProfile", "osProfile", "networkProfile", "vmId", "timeCreated")


def _update(call: Call, existing: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """PUT on an existing VM: size and other settings change; disks, image and OS don't."""
    if existing.get("_generalized"):
        raise errors.vm_generalized("Update VM", existing["name"])
    props = copy.deepcopy(body.get("properties") or {})
    old = existing["properties"]
    ref = (props.get("storageProfile") or {}).get("imageReference") or {}
    old_ref = old["storageProfile"]["imageReference"]
    for key in ("id", "publisher", "offer", "sku"):
        if ref.get(key) and str(ref[key]).lower() != str(old_ref.get(key, "")).lower():
            raise conflict(
                "PropertyChangeNotAllowed",
                "Changing property 'imageReference' is not allowed.",
            )
    new_size = (props.get("hardwareProfile") or {}).get("vmSize")
    if new_size and new_size.lower() != old["hardwareProfile"]["vmSize"].lower():
        size = vm_inputs.check_size(new_size, existing["location"])
        if quota.allocated(existing):
            quota.check(
                call.world,
                call.params["subscription"],
                existing["location"],
                size.name,
                skip=existing["id"],
            )
        props["hardwareProfile"] = {**props["hardwareProfile"], "vmSize": size.name}
    merged = {k: v for k, v in old.items() if k != "provisioningState"}
    merged.update({k: v for k, v in props.items() if k not in _KEPT and k != "userData"})
    fields = {k: v for k, v in existing.items() if k.startswith("_") and k != "_op"}
    if "userData" in props:
        fields["_user_data"] = props["userData"]
    for key in ("plan", "zones", "identity", "extendedLocation"):
        if key in existing:
            fields[key] = existing[key]
    fields["properties"] = merged
    fields["etag"] = f'"{int(str(existing.get("etag", "0")).strip(chr(34)) or 0) + 1}"'
    return fields


def patch_vm(call: Call, record: dict[str, Any], body: dict[str, Any]) -> None:
    props = body.get("properties") or {}
    if record.get("_generalized") and props:
        raise errors.vm_generalized("Update VM", record["name"])
    merged = _update(call, record, {"properties": props})
    state = record["properties"].get("provisioningState")
    record["properties"] = merged["properties"]
    record["etag"] = merged["etag"]
    if state is not None:  # a PATCH answers at once: the VM stays as provisioned as it was
        record["properties"]["provisioningState"] = state


# -- reading -----------------------------------------------------------------------------


def _status(code: str, display: str, world: World, level: str = "Info") -> dict[str, Any]:
    return {"code": code, "level": level, "displayStatus": display, "time": iso(world.clock.now())}


def extensions_of(world: World, record: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = record["id"].lower() + "/extensions/"
    return [
        r
        for k, r in sorted(arm.resources(world).items())
        if k.startswith(prefix) and r.get("type") == EXTENSION_TYPE
    ]


def instance_view(world: World, record: dict[str, Any]) -> dict[str, Any]:
    """The VM's instance view: provisioning and power state, OS, agent, disks."""
    props = record["properties"]
    state = str(props.get("provisioningState", "Succeeded"))
    power = str(record.get("_power") or "running")
    disk = disk_content(world, record)
    statuses = [
        _status(
            f"ProvisioningState/{state.lower()}",
            f"Provisioning {state.lower()}",
            world,
            "Error" if state == "Failed" else "Info",
        ),
        {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"},
    ]
    if record.get("_generalized"):
        statuses.append(
            {"code": "OSState/generalized", "level": "Info", "displayStatus": "VM generalized"}
        )
    view: dict[str, Any] = {
        "computerName": props["osProfile"].get("computerName"),
        "hyperVGeneration": disk["hyper_v_generation"],
        "disks": [
            {
                "name": os_disk(record)["name"],
                "statuses": [
                    _status("ProvisioningState/succeeded", "Provisioning succeeded", world)
                ],
            }
        ],
        "statuses": statuses,
    }
    extensions = extensions_of(world, record)
    if power == "running" and state == "Succeeded":
        view["osName"] = disk.get("os_name") or disk["os_type"].lower()
        view["osVersion"] = disk.get("os_version") or ""
        view["vmAgent"] = _vm_agent(world, record, disk)
    if extensions:
        view["extensions"] = [
            {
                "name": e["name"],
                "type": f"{e['properties']['publisher']}.{e['properties']['type']}",
                "typeHandlerVersion": e["properties"].get("typeHandlerVersion", ""),
                "statuses": [
                    _status("ProvisioningState/succeeded", "Provisioning succeeded", world)
                ],
            }
            for e in extensions
        ]
    return view


def render_vm(world: World, out: dict[str, Any]) -> dict[str, Any]:
    """Public JSON of a VM: extensions as `resources` (as Azure lists them)."""
    record = arm.get(world, out["id"])
    if record is not None:
        found = extensions_of(world, record)
        if found:
            out["resources"] = [arm.render(world, e) for e in found]
    return out


def agent_ready(record: dict[str, Any]) -> bool:
    """Whether the VM's guest agent runs (it stops for good when the guest deprovisions)."""
    return record.get("_agent") != "stopped"


def _vm_agent(world: World, record: dict[str, Any], disk: dict[str, Any]) -> dict[str, Any]:
    """The instance view's `vmAgent`: Ready with its handlers, or Not Ready once it stopped
    (the shape Azure reports for an agent that stopped reporting: Azure/WALinuxAgent#652)."""
    if not agent_ready(record):
        return {
            "vmAgentVersion": "Unknown",
            "statuses": [
                {
                    **_status("ProvisioningState/Unavailable", "Not Ready", world, "Warning"),
                    "message": "VM Agent is unresponsive.",
                }
            ],
        }
    return {
        "vmAgentVersion": AGENT_VERSION.get(disk["os_type"], "2.12.0.2"),
        "statuses": [
            {
                **_status("ProvisioningState/succeeded", "Ready", world),
                "message": "Guest Agent is running",
            }
        ],
        "extensionHandlers": [
            {
                "type": f"{e['properties']['publisher']}.{e['properties']['type']}",
                "typeHandlerVersion": e["properties"].get("typeHandlerVersion", ""),
                "status": {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Ready",
                },
            }
            for e in extensions_of(world, record)
        ],
    }


def find_vm(world: World, vid: str) -> dict[str, Any] | None:
    record = arm.get(world, vid)
    return record if record is not None and record.get("type") == TYPE else None


# -- lifecycle hooks -----------------------------------------------------------------------


def after_provisioned(world: World, record: dict[str, Any]) -> None:
    """A created VM boots (running); the extensions the config attaches appear."""
    if record.get("_power") != "starting":
        return
    record["_power"] = "running"
    os_type = os_disk(record).get("osType", "Linux")
    for item in settings.vm_extensions(world, os_type):
        name = str(item.get("name") or item.get("type"))
        props = {
            "publisher": item.get("publisher", "Microsoft.Azure.Extensions"),
            "type": item.get("type", name),
            "typeHandlerVersion": str(item.get("typeHandlerVersion", "1.0")),
            "autoUpgradeMinorVersion": True,
            "settings": item.get("settings", {}),
            "provisioningState": "Succeeded",
        }
        arm.put(
            world,
            {
                "id": f"{record['id']}/extensions/{name}",
                "name": name,
                "type": EXTENSION_TYPE,
                "location": record["location"],
                "properties": props,
            },
        )
    world.store.touch()


def after_delete(world: World, record: dict[str, Any]) -> None:
    """A deleted VM frees its NICs and OS disk (deleted too when their deleteOption says so)."""
    for item in record["properties"]["networkProfile"]["networkInterfaces"]:
        nic = arm.get(world, item["id"])
        if nic is None:
            continue
        nic["properties"].pop("virtualMachine", None)
        if (item.get("properties") or {}).get("deleteOption") == "Delete":
            clock.schedule(world, 0, "compute.delete_resource", {"id": nic["id"]})
    disk_id = managed_disk_id(record)
    if disk_id and os_disk(record).get("deleteOption") == "Delete":
        clock.schedule(world, 0, "compute.delete_resource", {"id": disk_id})
    content.release(world, record.get("_content"))
    world.store.touch()


@clock.action("compute.delete_resource")
def _delete_resource(world: World, args: dict[str, Any]) -> None:
    if arm.get(world, args["id"]) is not None:
        arm.remove(world, args["id"])
