"""Conformance cases for the Microsoft.Compute examples (compute/ and gallery/), with the
prerequisites each example's world needs, made through the real SDK clients.

Examples with placeholder names (`{existing-nic-name}`, `{image_publisher}`, ...) are
replayed with `Case.replace` substituting sandbox resources made in setup. Not replayed
yet: the unmanaged-disk VM create (`{existing-storage-account-name}.blob...`). Blob URIs in
public Azure storage map to a fixed VHD in the seeded account's Azurite (`sandbox_vhd`)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from batchimage.azure.clients import AzureClients
from batchimage.core.vhd_footer import build_footer
from batchimage.sandbox.connection import Connection
from tests.sandbox.compute_helpers import (
    account_blob,
    container,
    create_vm,
    linux_body,
    make_group,
    make_nic,
    windows_body,
)
from tests.sandbox.conformance import Case

PROVIDERS = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers"
VM = PROVIDERS + "/Microsoft.Compute/virtualMachines/{vmName}"
PASSWORD = "Conformance-Pass-42!"


def _vm(clients: AzureClients, group: str, name: str, body: dict[str, Any]) -> bool:
    """Create VM `name` once (cases share one sandbox; later setups find it made)."""
    try:
        clients.compute.virtual_machines.get(group, name)
    except ResourceNotFoundError:
        create_vm(clients, group, name, body)
        return True
    return False


def _windows(clients: AzureClients, group: str, name: str, location: str = "westus") -> None:
    make_group(clients, group, location)
    _vm(
        clients,
        group,
        name,
        windows_body(make_nic(clients, group, f"{name}-nic", location), PASSWORD, location),
    )


def my_vm(clients: AzureClients, conn: Connection) -> None:
    """myResourceGroup/myVM as VirtualMachine_Get shows it: Windows, tagged, user data,
    boot diagnostics, gallery applications, an extension."""
    group = make_group(clients, "myResourceGroup", "westus")
    nic = make_nic(clients, group, "myNIC", "westus")
    body = windows_body(nic, PASSWORD, "westus")
    body["tags"] = {"myTag1": "tagValue1"}
    sub = f"/subscriptions/{conn.subscription_id}/resourceGroups/myResourceGroup/providers"
    body["properties"].update(
        {
            "availabilitySet": {
                "id": f"{sub}/Microsoft.Compute/availabilitySets/my-AvailabilitySet"
            },
            "proximityPlacementGroup": {
                "id": f"{sub}/Microsoft.Compute/proximityPlacementGroups/my-ppg01"
            },
            "userData": "RXhhbXBsZSBVc2VyRGF0YQ==",
            "diagnosticsProfile": {
                "bootDiagnostics": {"enabled": True, "storageUri": "http://mystorage.blob.test"}
            },
            "applicationProfile": {
                "galleryApplications": [
                    {
                        "tags": "myTag1",
                        "order": 1,
                        "packageReferenceId": f"{sub}/Microsoft.Compute/galleries/g/applications/"
                        "a/versions/1.0",
                        "configurationReference": "https://mystorage.blob.test/settings.config",
                    }
                ]
            },
        }
    )
    if not _vm(clients, group, "myVM", body):
        return
    clients.compute.virtual_machine_extensions.begin_create_or_update(
        group,
        "myVM",
        "CustomScriptExtension-DSC",
        {
            "location": "westus",
            "tags": {"displayName": "CustomScriptExtension-DSC"},
            "properties": {
                "publisher": "Microsoft.Compute",
                "type": "CustomScriptExtension",
                "typeHandlerVersion": "1.9",
                "autoUpgradeMinorVersion": True,
                "settings": {},
            },
        },
    ).result()


def my_vm_generalized(clients: AzureClients, conn: Connection) -> None:
    my_vm(clients, conn)
    vms = clients.compute.virtual_machines
    if vms.get("myResourceGroup", "myVM", expand="instanceView").instance_view.statuses[
        -1
    ].code == ("OSState/generalized"):
        return
    vms.begin_deallocate("myResourceGroup", "myVM").result()
    vms.generalize("myResourceGroup", "myVM")


def my_image(clients: AzureClients, conn: Connection) -> None:
    my_vm_generalized(clients, conn)
    images = clients.compute.images
    try:
        while images.get("myResourceGroup", "myImage").provisioning_state == "Creating":
            time.sleep(0.02)  # an earlier case's PUT (not polled) is still running
        return
    except ResourceNotFoundError:
        pass
    vm_id = clients.compute.virtual_machines.get("myResourceGroup", "myVM").id
    clients.compute.images.begin_create_or_update(
        "myResourceGroup",
        "myImage",
        {"location": "westus", "properties": {"sourceVirtualMachine": {"id": vm_id}}},
    ).result()


def _deallocated_linux(clients: AzureClients, name: str) -> None:
    group = make_group(clients, "myResourceGroup", "westus")
    body = linux_body(make_nic(clients, group, f"{name}-nic", "westus"), location="westus")
    _vm(clients, group, name, body)
    clients.compute.virtual_machines.begin_deallocate(group, name).result()


def deallocated_linux(clients: AzureClients, conn: Connection) -> None:
    _deallocated_linux(clients, "myVMName")


def rgcompute_vm(name: str, extension: str | None = None) -> Any:
    def setup(clients: AzureClients, conn: Connection) -> None:
        group = make_group(clients, "rgcompute", "westus")
        body = linux_body(make_nic(clients, group, f"{name}-nic", "westus"), location="westus")
        _vm(clients, group, name, body)
        if extension:
            clients.compute.virtual_machine_extensions.begin_create_or_update(
                group,
                name,
                extension,
                {
                    "location": "westus",
                    "tags": {"key9183": "aa"},
                    "properties": {
                        "publisher": "extPublisher",
                        "type": "extType",
                        "typeHandlerVersion": "1.2",
                        "autoUpgradeMinorVersion": True,
                        "suppressFailures": True,
                        "settings": {},
                        "forceUpdateTag": "a",
                        "enableAutomaticUpgrade": True,
                    },
                },
            ).result()

    return setup


def my_gallery(clients: AzureClients, conn: Connection) -> None:
    make_group(clients, "myResourceGroup", "westus")
    clients.compute.galleries.begin_create_or_update(
        "myResourceGroup", "myGalleryName", {"location": "westus"}
    ).result()


GALLERY = PROVIDERS + "/Microsoft.Compute/galleries/{galleryName}"
IMAGE = PROVIDERS + "/Microsoft.Compute/images/{imageName}"

COMPUTE_CASES = [
    Case(
        "compute/2025-11-01/VirtualMachine_Get.json",
        "GET",
        VM,
        200,
        query={"$expand": "userData"},
        setup=my_vm,
        # data disks are not modelled; a VM of a scale set is not either
        ignore=("$.properties.storageProfile.dataDisks", "$.managedBy"),
    ),
    Case(
        "compute/2025-11-01/VirtualMachine_Deallocate_MaximumSet_Gen.json",
        "POST",
        VM + "/deallocate",
        202,
        query={"hibernate": "true"},
        setup=rgcompute_vm("aaaaaaaaaa"),
    ),
    Case(
        "compute/2025-04-01/VirtualMachine_Generalize.json",
        "POST",
        VM + "/generalize",
        200,
        setup=deallocated_linux,
    ),
    Case(
        "compute/2025-04-01/VirtualMachineRunCommand.json",
        "POST",
        VM + "/runCommand",
        202,
        body="parameters",
        setup=lambda c, conn: _windows(c, "crptestar98131", "vm3036"),
    ),
    Case(
        "compute/2025-11-01/VirtualMachineExtension_List_MaximumSet_Gen.json",
        "GET",
        VM + "/extensions",
        200,
        setup=rgcompute_vm("aaaaaaaaaaaaa", "myVMExtension"),
        # protected settings are never returned by the sandbox (it does not keep them);
        # the instance view of an extension is not modelled
        ignore=(
            "$.value[0].properties.protectedSettings",
            "$.value[0].properties.instanceView",
        ),
    ),
    Case(
        "compute/2025-11-01/VirtualMachineExtension_Delete_MaximumSet_Gen.json",
        "DELETE",
        VM + "/extensions/{vmExtensionName}",
        202,
        setup=rgcompute_vm("aaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ),
    Case(
        "compute/2025-11-01/Image_CreateFromAVM.json",
        "PUT",
        IMAGE,
        201,
        body="parameters",
        setup=my_vm_generalized,
    ),
    Case(
        "compute/2025-11-01/Image_CreateFromAVM.json",
        "PUT",
        IMAGE,
        200,
        body="parameters",
        setup=my_image,
    ),
    Case(
        "compute/2025-11-01/Image_Get.json",
        "GET",
        IMAGE,
        200,
        setup=my_image,
        # an image from a VM has a managed disk, not also a blob and a snapshot; data
        # disks are not modelled
        ignore=(
            "$.properties.storageProfile.osDisk.blobUri",
            "$.properties.storageProfile.osDisk.snapshot",
            "$.properties.storageProfile.dataDisks",
        ),
    ),
    Case(
        "gallery/2025-03-03/Gallery_Create.json",
        "PUT",
        GALLERY,
        201,
        body="gallery",
        setup=lambda c, conn: make_group(c, "myResourceGroup", "westus"),
    ),
    Case(
        "gallery/2025-03-03/Gallery_Create.json",
        "PUT",
        GALLERY,
        200,
        body="gallery",
        setup=my_gallery,
    ),
    Case(
        "gallery/2025-03-03/GalleryImage_Create.json",
        "PUT",
        GALLERY + "/images/{galleryImageName}",
        201,
        body="galleryImage",
        setup=my_gallery,
    ),
]


def _nic(name: str) -> Any:
    def setup(clients: AzureClients, conn: Connection) -> None:
        make_nic(clients, make_group(clients, "myResourceGroup", "westus"), name, "westus")

    return setup


def custom_image_world(clients: AzureClients, conn: Connection) -> None:
    """A Linux image myLinuxImage (the example's VM shows linuxConfiguration) captured from
    its own generalized VM (not myVMName, which VirtualMachine_Generalize uses), and a NIC."""
    _nic("customImageNic")(clients, conn)
    try:
        clients.compute.images.get("myResourceGroup", "myLinuxImage")
        return
    except ResourceNotFoundError:
        pass
    _deallocated_linux(clients, "myLinuxImageSource")
    vms = clients.compute.virtual_machines
    vms.generalize("myResourceGroup", "myLinuxImageSource")
    clients.compute.images.begin_create_or_update(
        "myResourceGroup",
        "myLinuxImage",
        {
            "location": "westus",
            "properties": {
                "sourceVirtualMachine": {"id": vms.get("myResourceGroup", "myLinuxImageSource").id}
            },
        },
    ).result()


USER = (("{your-username}", "azureuser"), ("{your-password}", PASSWORD))

COMPUTE_CASES += [
    Case(
        "compute/2025-11-01/VirtualMachine_Create_FromACustomImage.json",
        "PUT",
        VM,
        201,
        body="parameters",
        setup=custom_image_world,
        # placeholders -> a Linux image and a NIC made in setup; a new VM name, since
        # other cases already made a Windows myVM
        replace=(
            *USER,
            ("{existing-custom-image-name}", "myLinuxImage"),
            ("{existing-nic-name}", "customImageNic"),
            ('"vmName": "myVM"', '"vmName": "myCustomImageVM"'),
        ),
    ),
    Case(
        "compute/2025-11-01/VirtualMachine_Create_WithSshAuthentication.json",
        "PUT",
        VM,
        201,
        body="parameters",
        setup=_nic("sshNic"),
        replace=(
            *USER,
            ("{existing-nic-name}", "sshNic"),
            # a Linux image of the sandbox's marketplace catalogue
            ("{image_publisher}", "Canonical"),
            ("{image_offer}", "ubuntu-22_04-lts"),
            ("{image_sku}", "server"),
            ('"vmName": "myVM"', '"vmName": "mySshVM"'),
            # both examples name their OS disk myVMosdisk; Azure too refuses a second one
            ("myVMosdisk", "mySshVMosdisk"),
        ),
    ),
]

MARKETPLACE = (
    "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}"
    "/publishers/{publisherName}/artifacttypes/vmimage/offers/{offer}/skus/{skus}/versions"
)


def _ubuntu(location: str, publisher: str, offer: str, sku: str) -> tuple[tuple[str, str], ...]:
    """The generated example's filler names -> an image of the sandbox's catalogue."""
    return (
        (f'"location": "{location}"', '"location": "westus"'),
        (f'"publisherName": "{publisher}"', '"publisherName": "Canonical"'),
        (f'"offer": "{offer}"', '"offer": "ubuntu-22_04-lts"'),
        (f'"skus": "{sku}"', '"skus": "server"'),
    )


COMPUTE_CASES += [
    Case(
        "compute/2025-11-01/VirtualMachineImage_Get_MaximumSet_Gen.json",
        "GET",
        MARKETPLACE + "/{version}",
        200,
        replace=(
            *_ubuntu("aaaaaa", "aaa", "a" * 29, "a" * 27),
            ('"version": "aaaaaaaaaaaaaaaaaaa"', '"version": "22.04.202503180"'),
        ),
        # the generated example fills every optional field; a free, active, single-disk
        # Ubuntu image has no plan (paid images only), no data disk images, no deprecation
        # schedule, no tags and no edge zone (extendedLocation), on Azure as here
        ignore=(
            "$.properties.plan",
            "$.properties.dataDiskImages",
            "$.properties.imageDeprecationStatus.scheduledDeprecationTime",
            "$.properties.imageDeprecationStatus.alternativeOption",
            "$.tags",
            "$.extendedLocation",
        ),
    ),
    Case(
        "compute/2025-04-01/VirtualMachineImage_List_MaximumSet_Gen.json",
        "GET",
        MARKETPLACE,
        200,
        # $expand/$top/$orderby carry filler values ('aa...'), so they are not sent
        replace=_ubuntu("a" * 15, "a" * 6, "a" * 16, "a" * 23),
        # marketplace versions carry no tags and, outside edge zones, no extendedLocation
        ignore=("$[0].tags", "$[0].extendedLocation"),
    ),
]

VHD_BLOB = "{sandbox-blob-root}/sandboxstore/osimages/osimage.vhd"
STORE_ID = "/resourceGroups/sandbox-rg/providers/Microsoft.Storage/storageAccounts/sandboxstore"


def sandbox_vhd(clients: AzureClients, conn: Connection) -> None:
    """osimages/osimage.vhd in the seeded account: a 1 MiB fixed VHD (data + valid footer);
    and group myResourceGroup."""
    make_group(clients, "myResourceGroup", "westus")
    account = clients.storage.storage_accounts.get_properties("sandbox-rg", "sandboxstore")
    blob = account_blob(clients, "sandbox-rg", account, "osimages", "osimage.vhd")
    if blob.exists():
        return
    with contextlib.suppress(ResourceExistsError):
        container(clients, "sandbox-rg", account, "osimages")
    size = 1024 * 1024
    blob.create_page_blob(size + 512)
    blob.upload_page(build_footer(size), offset=size, length=512)


def blob_image(clients: AzureClients, conn: Connection) -> None:
    """myBlobImage, the managed image Image_CreateFromABlob makes (for its 200 replay)."""
    sandbox_vhd(clients, conn)
    images = clients.compute.images
    try:
        while images.get("myResourceGroup", "myBlobImage").provisioning_state == "Creating":
            time.sleep(0.02)  # the 201 case's PUT (not polled) is still running
        return
    except ResourceNotFoundError:
        pass
    uri = VHD_BLOB.replace("{sandbox-blob-root}", conn.blob_endpoint_root)
    clients.compute.images.begin_create_or_update(
        "myResourceGroup",
        "myBlobImage",
        {
            "location": "westus",
            "properties": {
                "storageProfile": {
                    "osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": uri}
                }
            },
        },
    ).result()


def definition(name: str, os_type: str, generation: str | None = None) -> Any:
    """Gallery myGalleryName with image definition `name` (generalized, `os_type`); the
    generation is `generation` or that of the custom-image world's Linux image."""

    def setup(clients: AzureClients, conn: Connection) -> None:
        my_gallery(clients, conn)
        gen = generation
        if gen is None:
            custom_image_world(clients, conn)
            image = clients.compute.images.get("myResourceGroup", "myLinuxImage")
            gen = image.hyper_v_generation
        else:
            sandbox_vhd(clients, conn)
        clients.compute.gallery_images.begin_create_or_update(
            "myResourceGroup",
            "myGalleryName",
            name,
            {
                "location": "westus",
                "properties": {
                    "osType": os_type,
                    "osState": "Generalized",
                    "hyperVGeneration": gen,
                    "identifier": {"publisher": "myPublisherName", "offer": name, "sku": "s"},
                },
            },
        ).result()

    return setup


IMAGE_VERSION = GALLERY + "/images/{galleryImageName}/versions/{galleryImageVersionName}"
SUBSCRIPTION_IN_BODY = ("/subscriptions/{subscriptionId}/", "/subscriptions/{subscription-id}/")

COMPUTE_CASES += [
    Case(
        "compute/2025-04-01/Image_CreateFromABlob.json",
        "PUT",
        IMAGE,
        201,
        body="parameters",
        setup=sandbox_vhd,
        # the blob -> a fixed VHD in the sandbox's Azurite; a name of its own (myImage is
        # the image from a VM other cases make)
        replace=(
            ("https://mystorageaccount.blob.core.windows.net/osimages/osimage.vhd", VHD_BLOB),
            ('"imageName": "myImage"', '"imageName": "myBlobImage"'),
        ),
    ),
    Case(
        "compute/2025-04-01/Image_CreateFromABlob.json",
        "PUT",
        IMAGE,
        200,
        body="parameters",
        setup=blob_image,
        replace=(
            ("https://mystorageaccount.blob.core.windows.net/osimages/osimage.vhd", VHD_BLOB),
            ('"imageName": "myImage"', '"imageName": "myBlobImage"'),
        ),
    ),
    Case(
        "gallery/2025-03-03/GalleryImageVersion_Create_WithVHD.json",
        "PUT",
        IMAGE_VERSION,
        201,
        body="galleryImageVersion",
        setup=definition("myVhdImage", "Windows", "V1"),
        # no policy flags the version, so there are no policy violations to list
        ignore=("$.properties.safetyProfile.policyViolations",),
        replace=(
            SUBSCRIPTION_IN_BODY,
            (
                "/resourceGroups/myResourceGroup/providers/Microsoft.Storage/storageAccounts/"
                "{storageAccount}",
                STORE_ID,
            ),
            (
                "https://gallerysourcencus.blob.core.windows.net/myvhds/"
                "Windows-Server-2012-R2-20171216-en.us-128GB.vhd",
                VHD_BLOB,
            ),
            ('"galleryImageName": "myGalleryImageName"', '"galleryImageName": "myVhdImage"'),
        ),
    ),
    Case(
        "gallery/2025-03-03/GalleryImageVersion_Create_WithVmAsSource.json",
        "PUT",
        IMAGE_VERSION,
        201,
        body="galleryImageVersion",
        setup=definition("myVmSourceImage", "Linux"),
        # the sources have no data disks (data disk images are not modelled), and no
        # policy flags the version, so there are no policy violations to list
        ignore=(
            "$.properties.storageProfile.dataDiskImages",
            "$.properties.safetyProfile.policyViolations",
        ),
        replace=(
            SUBSCRIPTION_IN_BODY,
            (
                "/resourceGroups/{resourceGroup}/providers/Microsoft.Compute/virtualMachines/"
                "{vmName}",
                "/resourceGroups/myResourceGroup/providers/Microsoft.Compute/"
                "virtualMachines/myLinuxImageSource",
            ),
            ('"galleryImageName": "myGalleryImageName"', '"galleryImageName": "myVmSourceImage"'),
        ),
    ),
    Case(
        "gallery/2025-03-03/GalleryImageVersion_Create.json",
        "PUT",
        IMAGE_VERSION,
        201,
        body="galleryImageVersion",
        setup=definition("myManagedSourceImage", "Linux"),
        # the sources have no data disks (data disk images are not modelled), and no
        # policy flags the version, so there are no policy violations to list
        ignore=(
            "$.properties.storageProfile.dataDiskImages",
            "$.properties.safetyProfile.policyViolations",
        ),
        replace=(
            SUBSCRIPTION_IN_BODY,
            (
                "/resourceGroups/{resourceGroup}/providers/Microsoft.Compute/images/{imageName}",
                "/resourceGroups/myResourceGroup/providers/Microsoft.Compute/images/myLinuxImage",
            ),
            (
                '"galleryImageName": "myGalleryImageName"',
                '"galleryImageName": "myManagedSourceImage"',
            ),
        ),
    ),
]
