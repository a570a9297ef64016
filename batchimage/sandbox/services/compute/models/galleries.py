"""Azure Compute Gallery: galleries, image definitions and image versions (from a VM, a
managed image or a VHD blob in Azurite), with replication to the target regions one
region after another over the version's simulated creation time.

Internal keys of a version: `_content` (the captured disk content) and `_replication`
(region -> {"name", "state": Replicating | Completed, "start", "due"})."""

from __future__ import annotations

import copy
import re
from typing import Any

from batchimage.sandbox import arm, clock
from batchimage.sandbox.apierrors import bad_request, conflict
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.lro import iso
from batchimage.sandbox.services.compute import errors
from batchimage.sandbox.services.compute.models import (
    blobs,
    catalog,
    content,
    facts,
    security,
    vhd,
    vms,
)

NS = "Microsoft.Compute"
GALLERY = f"{NS}/galleries"
DEFINITION = f"{GALLERY}/images"
VERSION = f"{DEFINITION}/versions"
IMMUTABLE = ("osType", "osState", "hyperVGeneration", "architecture")


def check_gallery_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9_.]{0,78}[A-Za-z0-9])?", name):
        raise errors.invalid_parameter(
            f"The gallery name '{name}' is invalid. It can contain only English letters, "
            "numbers, underscores and periods, and cannot start or end with an underscore or "
            "a period.",
            "galleryName",
        )


def check_version_name(name: str) -> None:
    parts = name.split(".")
    if len(parts) != 3 or not all(p.isdigit() and int(p) < 2**31 for p in parts):
        raise errors.invalid_parameter(
            f"The gallery image version name '{name}' is invalid. The version name must follow "
            "the format of Major(int32).Minor(int32).Patch(int32), for example 1.0.0.",
            "galleryImageVersionName",
        )


def _children(world: World, record: dict[str, Any], kind: str) -> list[str]:
    prefix = record["id"].lower() + "/"
    return [
        r["id"]
        for k, r in arm.resources(world).items()
        if k.startswith(prefix) and r["type"] == kind
    ]


# -- galleries ---------------------------------------------------------------------------


def build_gallery(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    props = copy.deepcopy(body.get("properties") or {})
    name = call.params["name"]
    props["identifier"] = {"uniqueName": f"{call.params['subscription']}-{name.upper()}"}
    props.pop("sharingStatus", None)
    return {"properties": props}


def gallery_before_delete(call: Call, record: dict[str, Any]) -> None:
    nested = _children(call.world, record, DEFINITION)
    if nested:
        raise errors.nested_resources(nested)


# -- image definitions -------------------------------------------------------------------


def build_definition(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    props = copy.deepcopy(body.get("properties") or {})
    for key in ("osType", "osState", "identifier"):
        if not props.get(key):
            raise errors.missing(f"galleryImage.properties.{key}")
    if props["osType"] not in ("Linux", "Windows"):
        raise errors.invalid_parameter(f"The osType '{props['osType']}' is not valid.", "osType")
    if props["osState"] not in ("Generalized", "Specialized"):
        raise errors.invalid_parameter(f"The osState '{props['osState']}' is not valid.", "osState")
    for key in ("publisher", "offer", "sku"):
        if not props["identifier"].get(key):
            raise errors.missing(f"galleryImage.properties.identifier.{key}")
    props.setdefault("hyperVGeneration", "V1")
    props.setdefault("architecture", "x64")
    security.check_definition_features(props)
    if existing is not None:
        old = existing["properties"]
        for key in (*IMMUTABLE, "identifier"):
            if key in old and props.get(key) != old.get(key):
                raise conflict(
                    "PropertyChangeNotAllowed",
                    f"Changing property 'galleryImage.properties.{key}' is not allowed.",
                )
    return {"properties": props}


def definition_before_delete(call: Call, record: dict[str, Any]) -> None:
    nested = _children(call.world, record, VERSION)
    if nested:
        raise errors.nested_resources(nested)


# -- image versions ----------------------------------------------------------------------


def _state_mismatch(source_id: str, what: str, source: str, wanted: str) -> Exception:
    message = (
        f"The resource with id '{source_id}' has a different {what} ['{source}'] than the "
        f"parent gallery image {what} ['{wanted}']."
    )
    if what == "Hypervisor generation":
        return conflict("Conflict", message)
    return bad_request("BadRequest", message)


def _from_vm(world: World, vm: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    if vms.vhd_ref(world, vm) is not None:
        raise errors.invalid_parameter(
            f"The virtual machine '{vm['id']}' has unmanaged disks; capture it to a VHD and "
            "create the image version from the VHD blob.",
            "storageProfile.source.virtualMachineId",
        )
    security.check_version_source_vm(vm, definition)
    state = "Generalized" if vm.get("_generalized") else "Specialized"
    wanted = definition["properties"]["osState"]
    if state != wanted:
        raise _state_mismatch(vm["id"], "OS state", state, wanted)
    disk = copy.deepcopy(vms.disk_content(world, vm))
    disk["extensions"] = sorted(
        {*disk["extensions"], *(e["name"] for e in vms.extensions_of(world, vm))}
    )
    return disk


def _from_image(world: World, image_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    record = arm.get(world, image_id)
    kind = str((record or {}).get("type", "")).lower()
    if record is not None and kind == vms.TYPE.lower():
        return _from_vm(world, record, definition)
    if record is None or kind not in (facts.MANAGED_IMAGE, facts.GALLERY_IMAGE_VERSION):
        raise errors.invalid_parameter(
            f"The source resource '{image_id}' was not found or is not a supported source.",
            "storageProfile.source.id",
        )
    wanted = definition["properties"]["osState"]
    if kind == facts.MANAGED_IMAGE:
        state = record["properties"]["storageProfile"]["osDisk"].get("osState", "Generalized")
        if state != wanted:
            raise _state_mismatch(record["id"], "OS state", state, wanted)
    return copy.deepcopy(content.of(world, record) or content.normalise({}))


def _from_vhd(world: World, source: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    uri = str(source.get("uri") or "")
    account_id = str(source.get("storageAccountId") or source.get("id") or "")
    account = arm.get(world, account_id) if account_id else None
    if account is None or account.get("type") != "Microsoft.Storage/storageAccounts":
        raise errors.invalid_parameter(
            f"The storage account '{account_id}' of the source VHD was not found.",
            "storageProfile.osDiskImage.source.storageAccountId",
        )
    ref = blobs.parse(world, uri)
    if ref is None or ref.account != account["name"]:
        raise errors.invalid_parameter(
            f"The source VHD URI '{uri}' is not a blob of storage account '{account['name']}'.",
            "storageProfile.osDiskImage.source.uri",
        )
    if not blobs.exists(world, ref):
        raise errors.invalid_parameter(
            f"The source VHD blob '{uri}' does not exist.", "storageProfile.osDiskImage.source.uri"
        )
    disk = vhd.read(world, ref, "osDiskImage")
    props = definition["properties"]
    if disk.get("source") is None and not disk["manifest"]:  # a VHD not made by the sandbox
        disk["os_type"] = props["osType"]
        disk["hyper_v_generation"] = props.get("hyperVGeneration", "V1")
    return disk


def _source_content(
    world: World, props: dict[str, Any], definition: dict[str, Any]
) -> dict[str, Any]:
    storage = props.get("storageProfile") or {}
    source = storage.get("source") or {}
    disk_source = (storage.get("osDiskImage") or {}).get("source") or {}
    if source.get("virtualMachineId"):
        vm = vms.find_vm(world, str(source["virtualMachineId"]))
        if vm is None:
            raise errors.invalid_parameter(
                f"The source virtual machine '{source['virtualMachineId']}' was not found.",
                "storageProfile.source.virtualMachineId",
            )
        disk = _from_vm(world, vm, definition)
    elif source.get("id"):
        disk = _from_image(world, str(source["id"]), definition)
    elif disk_source.get("uri"):
        disk = _from_vhd(world, disk_source, definition)
    else:
        raise errors.missing("storageProfile.source")
    def_props = definition["properties"]
    source_id = str(
        source.get("virtualMachineId") or source.get("id") or disk_source.get("uri") or ""
    )
    if disk["os_type"] != def_props["osType"]:
        raise _state_mismatch(source_id, "OS type", disk["os_type"], def_props["osType"])
    generation = def_props.get("hyperVGeneration", "V1")
    if disk["hyper_v_generation"] != generation:
        raise _state_mismatch(
            source_id, "Hypervisor generation", disk["hyper_v_generation"], generation
        )
    return disk


def _target_regions(profile: dict[str, Any], location: str) -> list[dict[str, Any]]:
    regions = [dict(r) for r in profile.get("targetRegions") or [{"name": location}]]
    names = [arm.norm_location(str(r.get("name", ""))) for r in regions]
    if location not in names:
        shown = ", ".join(str(r.get("name")) for r in regions)
        raise errors.invalid_parameter(
            f"The gallery image version publishing profile regions '{shown}' must contain the "
            f"location of image version '{location}'.",
            "publishingProfile.targetRegions",
        )
    for region, name in zip(regions, names, strict=True):
        if not catalog.offered_in(name):
            raise errors.invalid_parameter(
                f"The region '{region.get('name')}' is not available for gallery image versions.",
                "publishingProfile.targetRegions",
            )
        region.setdefault("regionalReplicaCount", int(profile.get("replicaCount") or 1))
        region.setdefault("storageAccountType", profile.get("storageAccountType", "Standard_LRS"))
        region.setdefault("excludeFromLatest", False)
    return regions


def build_version(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    """A version PUT: the source is read once (create); publishing settings may change."""
    from batchimage.sandbox.services.compute.urls import GALLERY_IMAGE_VERSIONS

    definition = GALLERY_IMAGE_VERSIONS.parent(call)
    world = call.world
    props = copy.deepcopy(body.get("properties") or {})
    location = arm.norm_location(body["location"])
    profile = dict(props.get("publishingProfile") or {})
    regions = _target_regions(profile, location)
    profile["targetRegions"] = regions
    profile.setdefault("replicaCount", 1)
    profile.setdefault("storageAccountType", "Standard_LRS")
    profile.setdefault("excludeFromLatest", False)
    profile["publishedDate"] = (existing or {}).get("properties", {}).get(
        "publishingProfile", {}
    ).get("publishedDate") or iso(world.clock.now())
    props["publishingProfile"] = profile
    props.setdefault("safetyProfile", {"allowDeletionOfReplicatedLocations": False})
    props["safetyProfile"].setdefault("reportedForPolicyViolation", False)
    if existing is not None:
        props["storageProfile"] = existing["properties"]["storageProfile"]
        fields = {k: v for k, v in existing.items() if k in ("_content", "_replication")}
    else:
        disk = _source_content(world, props, definition)
        storage = props.setdefault("storageProfile", {})
        os_image = storage.setdefault("osDiskImage", {})
        os_image.setdefault("hostCaching", "ReadWrite")
        os_image["sizeInGB"] = int(disk["size_gb"])
        storage.setdefault("dataDiskImages", [])
        fields = {"_content": content.put(world, disk), "_replication": {}}
    wanted = {arm.norm_location(r["name"]): r["name"] for r in regions}
    replication = {k: v for k, v in fields["_replication"].items() if k in wanted}
    kind = "update" if existing is not None else "create"
    rid = existing["id"] if existing is not None else GALLERY_IMAGE_VERSIONS.rid(call)
    total = world.config.duration(f"gallery_image_version.{kind}", 600.0)
    new = [r for r in wanted if r not in replication]
    order = sorted(new, key=lambda r: r != location)  # the source region first
    for i, region in enumerate(order):
        delay = total * (i + 1) / len(order)
        replication[region] = {
            "name": wanted[region],
            "state": "Replicating",
            "start": world.clock.now(),
            "due": world.clock.due(delay),
        }
        clock.schedule(world, delay, "compute.version_replicated", {"id": rid, "region": region})
    fields["_replication"] = replication
    fields["properties"] = props
    return fields


# What a version PATCH (GalleryImageVersions_Update, body GalleryImageVersionUpdate) may
# change in the publishing profile; storageAccountType "is not updatable" (REST spec).
UPDATABLE_PUBLISHING = ("targetRegions", "replicaCount", "excludeFromLatest", "endOfLifeDate")


def _source_of(storage: dict[str, Any]) -> tuple[str, ...]:
    """A storage profile's source ids and URI, as compared for a change (case ignored)."""
    source = storage.get("source") or {}
    disk = (storage.get("osDiskImage") or {}).get("source") or {}
    found = (source.get("virtualMachineId"), source.get("id"), disk.get("uri"), disk.get("id"))
    return tuple(str(v or "").lower() for v in found)


def patch_version(call: Call, record: dict[str, Any], body: dict[str, Any]) -> None:
    """A version PATCH: the publishing profile's updatable fields merged into the version
    (excludeFromLatest, endOfLifeDate, targetRegions, replicaCount); tags as any PATCH."""
    props = body.get("properties") or {}
    asked = dict(props.get("publishingProfile") or {})
    old = record["properties"].get("publishingProfile") or {}
    kept = asked.pop("storageAccountType", None)
    if kept is not None and kept != old.get("storageAccountType"):
        raise conflict(
            "PropertyChangeNotAllowed",
            "Changing property 'galleryImageVersion.properties.publishingProfile."
            "storageAccountType' is not allowed.",
        )
    if props and not props.get("storageProfile"):  # "Required" in GalleryImageVersionProperties
        raise errors.missing("galleryImageVersion.properties.storageProfile")
    if props and _source_of(props["storageProfile"]) != _source_of(
        record["properties"].get("storageProfile") or {}
    ):
        raise conflict(
            "PropertyChangeNotAllowed",
            "Changing property 'galleryImageVersion.properties.storageProfile.source' is not "
            "allowed.",
        )
    profile = {k: v for k, v in old.items() if k != "targetRegions" or "targetRegions" not in asked}
    profile.update({k: v for k, v in asked.items() if k in UPDATABLE_PUBLISHING})
    if "targetRegions" not in asked:
        profile["targetRegions"] = [dict(r) for r in old.get("targetRegions") or []]
    merged = {**copy.deepcopy(record["properties"]), "publishingProfile": profile}
    state = merged.get("provisioningState")
    fields = build_version(call, record, {"location": record["location"], "properties": merged})
    record.update(fields)
    if state is not None:  # the sandbox answers a PATCH at once: the state stays as it was
        record["properties"]["provisioningState"] = state


@clock.action("compute.version_replicated")
def _replicated(world: World, args: dict[str, Any]) -> None:
    record = arm.get(world, args["id"]) if args["id"] else None
    if record is None:
        return
    state = record.get("_replication", {}).get(args["region"])
    if state is not None:
        state["state"] = "Completed"
        world.store.touch()


def version_provisioned(world: World, record: dict[str, Any]) -> None:
    for state in record.get("_replication", {}).values():
        state["state"] = "Completed"
    world.store.touch()


def replication_status(world: World, record: dict[str, Any]) -> dict[str, Any]:
    summary = []
    for state in record.get("_replication", {}).values():
        if state["state"] == "Completed":
            progress = 100
        else:
            span = max(state["due"] - state["start"], 1e-9)
            progress = min(99, int(100 * (world.clock.now() - state["start"]) / span))
        summary.append(
            {"region": state["name"], "state": state["state"], "details": "", "progress": progress}
        )
    done = all(s["state"] == "Completed" for s in summary)
    return {"aggregatedState": "Completed" if done else "InProgress", "summary": summary}


def version_before_delete(call: Call, record: dict[str, Any]) -> None:
    reason = facts.in_use_reason(call.world, record["id"])
    if reason:
        raise errors.not_allowed(
            f"Gallery image version '{record['id']}' cannot be deleted because it is in use: "
            f"{reason}."
        )


def version_after_delete(world: World, record: dict[str, Any]) -> None:
    content.release(world, record.get("_content"))


def provision_gallery(world: World, item: dict[str, Any]) -> str:
    """Rehearsal prerequisite: gallery `item["name"]` (and definition `item["image"]` with
    `os_type`, `os_state`, `hyper_v_generation`, `identifier` when given)."""
    sub, group, location = item["subscription"], item["group"], item["location"]
    gallery_id = arm.resource_id(sub, group, NS, "galleries", item["name"])
    if arm.get(world, gallery_id) is None:
        props = {"identifier": {"uniqueName": f"{sub}-{item['name'].upper()}"}}
        arm.put_ready(
            world,
            group,
            NS,
            "galleries",
            item["name"],
            {"properties": props},
            subscription=sub,
            location=location,
        )
    if not item.get("image"):
        return gallery_id
    image_id = f"{gallery_id}/images/{item['image']}"
    if arm.get(world, image_id) is None:
        identifier = item.get("identifier") or {
            "publisher": "batchimage",
            "offer": item["name"],
            "sku": item["image"],
        }
        arm.put(
            world,
            {
                "id": image_id,
                "name": item["image"],
                "type": DEFINITION,
                "location": arm.norm_location(location),
                "properties": {
                    "osType": item.get("os_type", "Linux"),
                    "osState": item.get("os_state", "Generalized"),
                    "hyperVGeneration": item.get("hyper_v_generation", "V2"),
                    "architecture": "x64",
                    "identifier": identifier,
                    "provisioningState": "Succeeded",
                },
            },
        )
    return image_id
