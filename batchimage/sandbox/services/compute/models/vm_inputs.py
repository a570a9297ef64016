"""Checks on a VM create request that Azure makes before it accepts one: the image
reference (marketplace, gallery image version or definition, managed image) and its
purchase plan, the size, and the OS profile. Secrets (admin password, custom data) are
checked, then dropped: the sandbox never stores them."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError, bad_request, not_found
from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute import errors
from batchimage.sandbox.services.compute.models import (
    catalog,
    content,
    deprecation,
    facts,
    published,
    security,
)


@dataclass
class ResolvedImage:
    """What a VM starts from: the disk content to copy and the echo of the reference; the
    image's security type (a gallery definition's SecurityType), whether it can boot a
    Trusted Launch VM, and the VM disk types it disallows (a marketplace image's)."""

    content: dict[str, Any]
    reference: dict[str, Any]
    os_type: str
    plan: dict[str, str] | None
    security: str = security.STANDARD
    trusted_capable: bool = True
    disallowed_disk: str = "None"


def _platform_not_found(ref: dict[str, Any]) -> ApiError:
    urn = ":".join(str(ref.get(k, "")) for k in ("publisher", "offer", "sku", "version"))
    return ApiError(
        404,
        "PlatformImageNotFound",
        f"The platform image '{urn}' is not available. Verify that all fields in the storage "
        "profile are correct. For more details about storage profile information, please "
        "refer to https://aka.ms/storageprofile",
        target="imageReference",
    )


def _marketplace(world: World, ref: dict[str, Any], location: str) -> ResolvedImage:
    for key in ("publisher", "offer", "sku"):
        if not ref.get(key):
            raise errors.missing(f"imageReference.{key}")
    version = str(ref.get("version") or "")
    image = published.find(world, ref["publisher"], ref["offer"], ref["sku"], version)
    if image is None or not catalog.offered_in(location):
        raise _platform_not_found(ref)
    if deprecation.deprecated(world, image.publisher, image.offer, image.sku, image.version):
        raise deprecation.vm_refused(
            ":".join((image.publisher, image.offer, image.sku, image.version))
        )
    data = image.data
    disk = content.normalise(
        {
            "os_type": data["os_type"],
            "source": image.source,
            "plan": image.plan,
            "hyper_v_generation": data["hyper_v_generation"],
            "architecture": data["architecture"],
            "size_gb": data["disk_size_gb"],
            "os_name": data["os_name"],
            "os_version": data["os_version"],
        }
    )
    echo = {k: ref[k] for k in ("publisher", "offer", "sku", "version")}
    echo["exactVersion"] = image.version
    capable = data["hyper_v_generation"] == "V2" and security.trusted_launch_capable(
        list(data.get("features") or [])
    )
    return ResolvedImage(
        disk,
        echo,
        data["os_type"],
        image.plan,
        trusted_capable=capable,
        disallowed_disk=catalog.disallowed_disk_type(data),
    )


def _gallery_image_missing(image_id: str, location: str) -> ApiError:
    return not_found(
        "GalleryImageNotFound",
        f"The gallery image {image_id} is not available in {location} region. Please contact "
        "image owner to replicate to this region, or change your requested region.",
    )


def _custom(world: World, image_id: str, location: str) -> ResolvedImage:
    record = arm.get(world, image_id)
    kind = str((record or {}).get("type", "")).lower()
    if record is None or kind not in (
        facts.GALLERY_IMAGE,
        facts.GALLERY_IMAGE_VERSION,
        facts.MANAGED_IMAGE,
    ):
        if "/galleries/" in image_id.lower():
            raise _gallery_image_missing(image_id, location)
        raise errors.invalid_parameter(
            f"The Image '{image_id}' cannot be found in '{location}' region.", "imageReference.id"
        )
    found = facts.image_facts(world, image_id)
    if found is None:
        raise _gallery_image_missing(image_id, location)
    if kind == facts.MANAGED_IMAGE:
        if record["location"] != location:
            raise errors.invalid_parameter(
                f"The Image '{image_id}' cannot be found in '{location}' region.",
                "imageReference.id",
            )
    elif location not in found.replicated_regions:
        raise _gallery_image_missing(image_id, location)
    version = arm.get(world, found.version_id)
    disk = content.of(world, version) or content.normalise({})
    disk = copy.deepcopy(disk)
    disk["deprovisioned"] = False  # a new VM is provisioned from the image
    return ResolvedImage(
        disk, {"id": image_id}, disk["os_type"], disk.get("plan"), security=found.security_type
    )


def resolve_image(world: World, ref: dict[str, Any] | None, location: str) -> ResolvedImage:
    """The image a VM is created from; Azure's errors for unknown or unreachable images."""
    if not ref:
        raise errors.missing("imageReference")
    if ref.get("id"):
        return _custom(world, str(ref["id"]), location)
    if ref.get("sharedGalleryImageId") or ref.get("communityGalleryImageId"):
        raise errors.invalid_parameter(
            "Shared and community gallery images are not modelled by the batchimage sandbox.",
            "imageReference",
        )
    return _marketplace(world, ref, location)


def check_plan(image: ResolvedImage, plan: dict[str, Any] | None, vm_id: str) -> None:
    """Marketplace images with a plan (and images made from them) need the plan echoed."""
    if image.plan is None:
        return
    if not plan or not plan.get("name"):
        raise bad_request(
            "VMMarketplaceInvalidInput",
            "Creating a virtual machine from Marketplace image or a custom image sourced from a "
            f"Marketplace image requires Plan information in the request. VM: '{vm_id}'.",
        )
    wanted = {k: str(image.plan.get(k, "")).lower() for k in ("name", "product", "publisher")}
    given = {k: str(plan.get(k, "")).lower() for k in ("name", "product", "publisher")}
    if wanted != given:
        raise bad_request(
            "VMMarketplaceInvalidInput",
            f"The purchase plan {given} does not match the image's plan {wanted}. VM: '{vm_id}'.",
        )


def check_size(size_name: str | None, location: str) -> catalog.VmSize:
    if not size_name:
        raise errors.missing("hardwareProfile.vmSize")
    size = catalog.size(size_name)
    if size is None or not catalog.offered_in(location):
        offered = ", ".join(s.name for s in catalog.sizes())
        raise errors.invalid_parameter(
            f"The requested VM size {size_name} is not available in the current region. The "
            f"sizes available in the current region are: {offered}. Find out more on the "
            "available VM sizes in each region at https://aka.ms/azure-regions.",
            "vmSize",
        )
    return size


_PASSWORD_RULES = (r"[A-Z]", r"[a-z]", r"[0-9]", r"[^A-Za-z0-9]")


def _check_password(password: str) -> None:
    classes = sum(bool(re.search(rule, password)) for rule in _PASSWORD_RULES)
    control = any(ord(c) < 32 for c in password)
    if not 8 <= len(password) <= 123 or classes < 3 or control:
        raise errors.invalid_parameter(
            "The supplied password must be between 8-123 characters long and must satisfy at "
            "least 3 of password complexity requirements from the following:\r\n1) Contains an "
            "uppercase character\r\n2) Contains a lowercase character\r\n3) Contains a numeric "
            "digit\r\n4) Contains a special character\r\n5) Control characters are not allowed",
            "adminPassword",
        )


def os_profile(profile: dict[str, Any] | None, os_type: str, vm_name: str) -> dict[str, Any]:
    """The stored OS profile: checked like Azure, defaults filled, password dropped."""
    if not profile:
        raise errors.missing("osProfile")
    out = copy.deepcopy(profile)
    password = out.pop("adminPassword", None)
    out.pop("customData", None)
    if not out.get("adminUsername"):
        raise errors.missing("adminUsername")
    out.setdefault("computerName", vm_name[:15] if os_type == "Windows" else vm_name)
    out.setdefault("secrets", [])
    out.setdefault("allowExtensionOperations", True)
    out.setdefault("requireGuestProvisionSignal", True)
    if os_type == "Windows":
        if not password:
            raise errors.missing("adminPassword")
        _check_password(str(password))
        windows = out.setdefault("windowsConfiguration", {})
        windows.setdefault("provisionVMAgent", True)
        windows.setdefault("enableAutomaticUpdates", True)
        out.pop("linuxConfiguration", None)
        return out
    linux = out.setdefault("linuxConfiguration", {})
    keys = (linux.get("ssh") or {}).get("publicKeys") or []
    no_password = bool(linux.get("disablePasswordAuthentication", not password))
    if no_password and not keys:
        raise errors.invalid_parameter(
            "Authentication using either SSH or by user name and password must be enabled in "
            "Linux profile.",
            "linuxConfiguration",
        )
    if password:
        _check_password(str(password))
    linux["disablePasswordAuthentication"] = no_password
    linux.setdefault("provisionVMAgent", True)
    out.pop("windowsConfiguration", None)
    return out
