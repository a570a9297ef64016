"""The classic custom-image flow by hand through the real SDKs (as the classic Batch
guide does it), in a sandbox modelling a cloud that still serves unmanaged disks (Azure
Stack Hub): an unmanaged VM from a Gen1 marketplace image -> customize with a run command
-> deprovision -> deallocate -> generalize -> capture into the `system` container ->
the VHD page blob is a valid fixed VHD carrying the manifest -> a gallery image version
from that VHD. (The Batch pool part extends this flow in the Batch tests.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from tests.sandbox.compute_helpers import (
    DEPROVISION_LATER,
    UBUNTU_GEN1,
    create_vm,
    deprovision,
    error_code,
    linux_body,
    make_group,
    make_nic,
    make_storage,
    power_state,
)

VHD_MAGIC = b"BATCHIMAGE-SANDBOX-DISK/1\n"


def footer_fields(raw: bytes) -> dict[str, Any]:
    """The footer fields this test checks, decoded independently of batchimage.azure.vhd."""
    checksum = int.from_bytes(raw[64:68], "big")
    computed = ~(sum(raw[:64]) + sum(raw[68:512])) & 0xFFFFFFFF
    return {
        "cookie": raw[:8],
        "disk_type": int.from_bytes(raw[60:64], "big"),
        "current_size": int.from_bytes(raw[48:56], "big"),
        "checksum_ok": checksum == computed,
    }


def classic_image(
    clients: AzureClients, admin: SandboxAdmin, unique: Callable[[str], str]
) -> tuple[str, Any, str, dict[str, Any]]:
    """Build the classic image; returns (group, storage account, VHD URL, capture template)."""
    compute = clients.compute
    group = make_group(clients, unique("rgclassic"))
    account = make_storage(clients, group, unique("classic"))
    vhd_uri = f"{account.primary_endpoints.blob}vhds/build-osdisk.vhd"
    body = linux_body(
        make_nic(clients, group, "build-nic"),
        image=UBUNTU_GEN1,
        os_disk={"name": "build-osdisk", "vhd": {"uri": vhd_uri}, "caching": "ReadWrite"},
    )
    vm = create_vm(clients, group, "build", body)
    assert vm.storage_profile.os_disk.vhd.uri == vhd_uri
    result = compute.virtual_machines.begin_run_command(
        group,
        "build",
        {"commandId": "RunShellScript", "script": ["apt-get install -y ffmpeg", "mkdir -p /data"]},
    ).result()
    assert result.value[0].code == "ProvisioningState/succeeded"
    deprovision(clients, admin, group, "build")
    with pytest.raises(HttpResponseError) as early:
        compute.virtual_machines.begin_capture(
            group,
            "build",
            {"vhdPrefix": "batch", "destinationContainerName": "images", "overwriteVhds": True},
        ).result()
    assert early.value.status_code == 409 and error_code(early.value) == "OperationNotAllowed"
    assert "not generalized" in str(early.value.message)
    compute.virtual_machines.begin_deallocate(group, "build").result()
    assert power_state(clients, group, "build") == "deallocated"
    compute.virtual_machines.generalize(group, "build")
    template = compute.virtual_machines.begin_capture(
        group,
        "build",
        {"vhdPrefix": "batch", "destinationContainerName": "images", "overwriteVhds": True},
    ).result()
    resource = template.resources[0]
    image_uri = resource["properties"]["storageProfile"]["osDisk"]["image"]["uri"]
    return group, account, image_uri, template.as_dict()


@pytest.mark.usefixtures("stack_hub")
def test_classic_flow_to_gallery_version(
    clients: AzureClients, unique: Callable[[str], str], admin: SandboxAdmin
) -> None:
    group, account, image_uri, template = classic_image(clients, admin, unique)
    assert template["contentVersion"] == "1.0.0.0"
    prefix = f"{account.primary_endpoints.blob}system/Microsoft.Compute/Images/images/batch-osDisk."
    assert image_uri.startswith(prefix) and image_uri.endswith(".vhd")

    key = clients.storage.storage_accounts.list_keys(group, account.name).keys_property[0].value
    credential = {"account_name": account.name, "account_key": key}
    system = clients.blob_service(account.primary_endpoints.blob, credential).get_container_client(
        "system"
    )
    names = sorted(b.name for b in system.list_blobs(name_starts_with="Microsoft.Compute/Images/"))
    assert len(names) == 2 and names[0].endswith(".vhd") and "-vmTemplate." in names[1]
    vhd = system.get_blob_client(names[0])
    props = vhd.get_blob_properties()
    assert props.blob_type == "PageBlob" and props.size % 512 == 0
    footer = footer_fields(vhd.download_blob(offset=props.size - 512, length=512).readall())
    assert footer == {
        "cookie": b"conectix",
        "disk_type": 2,
        "current_size": props.size - 512,
        "checksum_ok": True,
    }
    head = vhd.download_blob(offset=0, length=64 * 1024).readall()
    assert head.startswith(VHD_MAGIC)
    length = int(head[len(VHD_MAGIC) : len(VHD_MAGIC) + 10])
    disk = json.loads(head[len(VHD_MAGIC) + 11 : len(VHD_MAGIC) + 11 + length])
    assert disk["deprovisioned"] is True
    assert disk["source"]["sku"] == UBUNTU_GEN1["sku"]
    scripts = [m["script"] for m in disk["manifest"] if m["kind"] == "shell"]
    assert scripts == ["apt-get install -y ffmpeg\nmkdir -p /data", DEPROVISION_LATER]
    stored = json.loads(system.get_blob_client(names[1]).download_blob().readall())
    assert stored["resources"][0]["properties"]["storageProfile"]["osDisk"]["image"]["uri"] == (
        image_uri
    )

    compute = clients.compute
    compute.galleries.begin_create_or_update(
        group, "classic_gallery", {"location": "eastus"}
    ).result()
    compute.gallery_images.begin_create_or_update(
        group,
        "classic_gallery",
        "batch-ubuntu",
        {
            "location": "eastus",
            "properties": {
                "osType": "Linux",
                "osState": "Generalized",
                "hyperVGeneration": "V1",
                "identifier": {"publisher": "contoso", "offer": "batch", "sku": "ubuntu-24"},
            },
        },
    ).result()
    version = compute.gallery_image_versions.begin_create_or_update(
        group,
        "classic_gallery",
        "batch-ubuntu",
        "1.0.0",
        {
            "location": "eastus",
            "properties": {
                "publishingProfile": {
                    "targetRegions": [{"name": "East US"}, {"name": "westeurope"}]
                },
                "storageProfile": {
                    "osDiskImage": {"source": {"storageAccountId": account.id, "uri": image_uri}}
                },
            },
        },
    ).result()
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.os_disk_image.size_in_gb == 30
    status = compute.gallery_image_versions.get(
        group, "classic_gallery", "batch-ubuntu", "1.0.0", expand="ReplicationStatus"
    ).replication_status
    assert status.aggregated_state == "Completed"
    assert {(s.region, s.state) for s in status.summary} == {
        ("East US", "Completed"),
        ("westeurope", "Completed"),
    }
    tables = admin.state()["tables"]
    carried = tables["compute_content"][tables["resources"][version.id.lower()]["_content"]]
    assert carried["manifest"] == disk["manifest"] and carried["deprovisioned"] is True
