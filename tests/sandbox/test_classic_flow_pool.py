"""The classic custom-image flow (in a sandbox modelling Azure Stack Hub, which still serves
unmanaged disks), continued into Batch through the real SDKs: the gallery
image version built from the captured VHD (test_compute_classic_flow) -> a Batch pool on
it with the node agent SKU resolved from list supported images -> nodes idle, the pool
reporting the image id and node agent (the classic guide's Properties check), and the
version kept from deletion while the pool lives."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.sandbox.batch_support import wait_nodes
from tests.sandbox.compute_helpers import UBUNTU_GEN1
from tests.sandbox.test_compute_classic_flow import classic_image


@pytest.mark.usefixtures("stack_hub")
def test_classic_flow_to_batch_pool(
    clients: AzureClients,
    sandbox: Connection,
    admin: SandboxAdmin,
    unique: Callable[[str], str],
) -> None:
    group, account, image_uri, _ = classic_image(clients, admin, unique)
    compute = clients.compute
    gallery, definition = "classic_pool_gallery", "batch-ubuntu"
    compute.galleries.begin_create_or_update(group, gallery, {"location": "eastus"}).result()
    compute.gallery_images.begin_create_or_update(
        group,
        gallery,
        definition,
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
    source = {"storageAccountId": account.id, "uri": image_uri}
    version = compute.gallery_image_versions.begin_create_or_update(
        group,
        gallery,
        definition,
        "1.0.0",
        {
            "location": "eastus",
            "properties": {
                "publishingProfile": {"targetRegions": [{"name": "East US"}]},
                "storageProfile": {"osDiskImage": {"source": source}},
            },
        },
    ).result()

    batch = clients.batch(sandbox.batch_endpoint(sandbox.batch_account))
    agent = next(
        i.node_agent_sku_id
        for i in batch.list_supported_images()
        if (i.image_reference.publisher.lower(), i.image_reference.offer, i.image_reference.sku)
        == (UBUNTU_GEN1["publisher"].lower(), UBUNTU_GEN1["offer"], UBUNTU_GEN1["sku"])
    )
    assert agent == "batch.node.ubuntu 24.04"
    pool_id = unique("classic")
    batch.create_pool(
        bm.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="Standard_D2s_v3",
            virtual_machine_configuration=bm.VirtualMachineConfiguration(
                image_reference=bm.BatchVmImageReference(virtual_machine_image_id=version.id),
                node_agent_sku_id=agent,
            ),
            target_dedicated_nodes=2,
            start_task=bm.BatchStartTask(command_line="/bin/sh -c 'ffmpeg -version'"),
        )
    )
    nodes = wait_nodes(batch, pool_id, {"idle"}, 2)
    assert all(n.start_task_info.result == "success" for n in nodes)
    pool = batch.get_pool(pool_id)
    vmc = pool.virtual_machine_configuration
    assert vmc.image_reference.virtual_machine_image_id == version.id
    assert vmc.node_agent_sku_id == "batch.node.ubuntu 24.04"

    with pytest.raises(HttpResponseError) as in_use:
        compute.gallery_image_versions.begin_delete(group, gallery, definition, "1.0.0").result()
    assert in_use.value.status_code == 409 and pool_id in str(in_use.value.message)
    batch.begin_delete_pool(pool_id, polling_interval=0).result()
    compute.gallery_image_versions.begin_delete(group, gallery, definition, "1.0.0").result()
