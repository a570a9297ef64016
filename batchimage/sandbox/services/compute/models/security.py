"""Security types: the `SecurityType` feature of gallery image definitions and the Trusted
Launch rules that tie definitions, their sources and the VMs made from them together
(sources: docs/azure-behaviours.md, "Image definitions and Trusted Launch").

    check_definition_features(props)          400 InvalidParameter for an undocumented value
    definition_security(definition_record)    "TrustedLaunch", ..., or "Standard" (no feature)
    vm_security(vm_record)                    "TrustedLaunch" | "ConfidentialVM" | "Standard"
    check_version_source_vm(vm, definition)   a Trusted Launch VM cannot feed a *Supported one
    check_managed_image_source(vm)            no managed image from a Trusted Launch VM
    check_vm_image(security, image_security)  the image's demands on the new VM
"""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.apierrors import ApiError, bad_request
from batchimage.sandbox.services.compute import errors

# The documented values of the SecurityType feature (learn.microsoft.com, "Store and share
# images in an Azure Compute Gallery", image definitions; az sig image-definition create).
# Azure's docs spell one both ConfidentialVMSupported and ConfidentialVmSupported, so
# values are compared without case.
SECURITY_TYPES = (
    "TrustedLaunchSupported",
    "TrustedLaunch",
    "ConfidentialVmSupported",
    "ConfidentialVM",
    "TrustedLaunchAndConfidentialVmSupported",
)
STANDARD = "Standard"
# Generic Gen2 images without a VM guest state: Gen2, Trusted Launch (or confidential) VMs
# can be made from them; a source with a VM guest state cannot go into them.
SUPPORTED = ("TrustedLaunchSupported", "TrustedLaunchAndConfidentialVmSupported")
SUPPORTED_ALL = (*SUPPORTED, "ConfidentialVmSupported")
# Definitions whose versions only Trusted Launch VMs (and scale sets) can use.
TRUSTED_ONLY = ("TrustedLaunch",)


def canonical(value: str) -> str | None:
    """The documented spelling of a SecurityType value, or None when it is not one."""
    return next((v for v in SECURITY_TYPES if v.lower() == value.lower()), None)


def check_definition_features(props: dict[str, Any]) -> None:
    """Refuse a definition whose SecurityType feature has an undocumented value ("Standard"
    included), in the words Azure uses (azure-cli#24178, #24142)."""
    for feature in props.get("features") or []:
        name = str((feature or {}).get("name") or "")
        value = str((feature or {}).get("value") or "")
        if name.lower() == "securitytype" and canonical(value) is None:
            raise errors.invalid_parameter(
                f"The value '{value}' for feature 'SecurityType' is invalid. Allowed characters "
                "are English alphanumerical characters with spaces and commas. The length of "
                "the value cannot exceed 100 characters.",
                "galleryImage.properties.features",
            )


def definition_security(definition: dict[str, Any] | None) -> str:
    """The definition's SecurityType feature (documented spelling), or Standard."""
    for feature in ((definition or {}).get("properties") or {}).get("features") or []:
        if str(feature.get("name") or "").lower() == "securitytype":
            return canonical(str(feature.get("value") or "")) or STANDARD
    return STANDARD


def vm_security(vm: dict[str, Any]) -> str:
    """The VM's security type as its securityProfile says (Standard when none)."""
    profile = vm.get("properties", {}).get("securityProfile") or {}
    value = str(profile.get("securityType") or STANDARD)
    return next(
        (v for v in ("TrustedLaunch", "ConfidentialVM") if v.lower() == value.lower()), STANDARD
    )


def check_version_source_vm(vm: dict[str, Any], definition: dict[str, Any]) -> None:
    """A VM with a VM guest state (Trusted Launch, confidential) cannot feed a `*Supported`
    definition (hashicorp/packer-plugin-azure#304; learn.microsoft.com trusted-launch-portal:
    no VM guest state in the source of such images)."""
    wanted = definition_security(definition)
    if wanted in SUPPORTED_ALL and vm_security(vm) != STANDARD:
        raise errors.invalid_parameter(
            f"The security type '{wanted}' is not supported for the source id '{vm['id']}'. "
            "Currently only Vhd Blob, User Image and Gallery Image Version sources are "
            f"supported for '{wanted}' images.",
            "galleryImageVersion.properties.storageProfile.source.virtualMachineId",
        )


def check_managed_image_source(vm: dict[str, Any]) -> None:
    """No managed image from a Trusted Launch VM (hashicorp/packer#13189)."""
    if vm_security(vm) == "TrustedLaunch":
        raise errors.not_allowed(
            "Creation of managed images are not supported for virtual machine with "
            "TrustedLaunch security type."
        )


def trusted_launch_capable(features: list[dict[str, Any]]) -> bool:
    """Whether a marketplace image's features say it can boot a Trusted Launch VM (its
    SecurityType contains TrustedLaunch; trusted-launch-faq)."""
    for feature in features:
        if str(feature.get("name") or "").lower() == "securitytype":
            return "trustedlaunch" in str(feature.get("value") or "").lower()
    return False


def check_vm_image(requested: str, image_security: str, *, capable: bool) -> ApiError | None:
    """The error for a VM of security type `requested` made from an image of security type
    `image_security` (`capable`: the image can boot Trusted Launch VMs), or None."""
    if image_security in TRUSTED_ONLY and requested != "TrustedLaunch":
        return bad_request(
            "BadRequest",
            "The provided gallery image only supports creation of VMs and VM Scale Sets with "
            "'TrustedLaunch' security type.",
        )
    if requested == "TrustedLaunch" and not capable:
        return bad_request(
            "BadRequest",
            "Use of TrustedLaunch setting is not supported for the provided image. Please "
            "select Trusted Launch Supported Gen2 OS Image. For more information, see "
            "https://aka.ms/TrustedLaunch-FAQ.",
        )
    return None
