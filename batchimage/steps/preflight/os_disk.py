"""Check: an unmanaged build OS disk (the classic flow) is possible here: the cloud still
serves unmanaged disks (public Azure retired them: docs/azure-behaviours.md, Disks) and the
Marketplace base image does not disallow them (Gen2 images report
`disallowed.vmDiskType: Unmanaged`). No result for a managed OS disk."""

from __future__ import annotations

from batchimage.core.errors import AzureError, TransientAzureError
from batchimage.steps.preflight.facts import Facts
from batchimage.steps.preflight.report import CheckResult, fail, ok

NAME = "os disk"
MANAGED_FLOW = (
    "build on a managed OS disk (image.build.os_disk.type: managed, the default): the image "
    "still becomes a gallery version, and capture.vhd_export writes it as a VHD"
)


def check_os_disk(facts: Facts) -> list[CheckResult]:
    """One result for an unmanaged build OS disk, none otherwise."""
    spec = facts.spec
    disk = spec.image.build.os_disk
    if disk.type != "unmanaged" or not spec.image.builds_vm:
        return []
    profile = facts.clients.profile
    if not profile.unmanaged_disks:
        return [
            fail(
                NAME,
                f"cloud {profile.name} has retired unmanaged disks (VMs on them cannot start "
                f"after 31 March 2026), so the classic flow cannot run there; {MANAGED_FLOW}",
            )
        ]
    if spec.image.base.marketplace is not None:
        try:
            image = facts.marketplace()
        except TransientAzureError:
            raise
        except AzureError:
            return []  # the base image check reports it
        if image.disallowed_disk.lower() == "unmanaged":
            return [
                fail(
                    NAME,
                    f"{image.urn} disallows unmanaged OS disks (disallowed.vmDiskType: "
                    f"Unmanaged, as Gen2 Marketplace images do): pick a Gen1 image for the "
                    f"classic flow, or {MANAGED_FLOW}",
                )
            ]
    return [ok(NAME, f"unmanaged OS disk in storage account {disk.storage_account} (classic flow)")]
