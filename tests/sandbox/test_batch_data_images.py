"""Pools from Azure Compute Gallery images through the real BatchClient: Azure's
create-time refusals (missing image, no replica in the account's region, another
subscription without Microsoft.Batch registered, a specialized image), resize errors
relaying the Compute error that stops the pool's VMs (a VM size that cannot boot the
image's Hyper-V generation, an image no longer in the region), unusable nodes without
node errors (node agent SKU vs image, image not deprovisioned, VM extensions baked in),
definition ids resolving to the latest version, and the in-use check that keeps a live
pool's image version from being deleted.

The gallery versions are put into an in-process sandbox's store the way the Compute
service keeps them (ARM record + disk content, read back through `compute.facts`); the
SDK-driven gallery flow is in test_classic_flow_pool.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox import arm
from batchimage.sandbox.config import SandboxConfig
from batchimage.sandbox.context import World
from batchimage.sandbox.server import SandboxServer
from batchimage.sandbox.services.compute.models import content, facts
from batchimage.sandbox.services.resources import models as resources
from tests.sandbox.batch_support import (
    allocation_failed,
    pool_options,
    wait_nodes,
    wait_steady,
)

OTHER_SUB = "00000000-0000-4000-8000-0000000000e2"
UBUNTU = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "1"}
WINDOWS = {
    "publisher": "MicrosoftWindowsServer",
    "offer": "WindowsServer",
    "sku": "2022-datacenter-g2",
    "version": "1",
}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """An in-process sandbox (no Azurite): tests reach its store to stand gallery images in."""
    server = SandboxServer(
        tmp_path_factory.mktemp("images"), config=SandboxConfig(time_scale=0.001), azurite=False
    )
    server.start_in_thread()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(local: SandboxServer) -> BatchClient:
    assert local.connection is not None
    conn = local.connection
    return AzureClients(sandbox_profile(conn)).batch(conn.batch_endpoint(conn.batch_account))


class Gallery:
    """Gallery image definitions and versions, stored as the Compute service stores them."""

    def __init__(self, world: World) -> None:
        self.world = world

    def version(
        self,
        name: str,
        *,
        source: dict[str, str] | None = None,
        os_type: str = "Linux",
        os_state: str = "Generalized",
        deprovisioned: bool = True,
        extensions: tuple[str, ...] = (),
        regions: tuple[str, ...] = ("eastus",),
        subscription: str | None = None,
        version: str = "1.0.0",
        generation: str = "V2",
    ) -> str:
        """Store definition `name` (if new) and its version; returns the version id."""
        sub = subscription or self.world.identity.subscription_id
        definition = arm.resource_id(sub, "imgs", "Microsoft.Compute", "galleries", "gal")
        definition += f"/images/{name}"
        with self.world.store.transaction():
            arm.put(
                self.world,
                {
                    "id": definition,
                    "name": name,
                    "type": "Microsoft.Compute/galleries/images",
                    "location": "eastus",
                    "properties": {
                        "osType": os_type,
                        "osState": os_state,
                        "hyperVGeneration": generation,
                    },
                },
            )
            disk = content.new(
                self.world, os_type=os_type, source=source or UBUNTU, hyper_v_generation=generation
            )
            found = content.get(self.world, disk)
            assert found is not None
            found.update({"deprovisioned": deprovisioned, "extensions": list(extensions)})
            found["manifest"].append({"kind": "shell", "script": "apt-get install -y ffmpeg"})
            rid = f"{definition}/versions/{version}"
            arm.put(
                self.world,
                {
                    "id": rid,
                    "name": version,
                    "type": "Microsoft.Compute/galleries/images/versions",
                    "location": "eastus",
                    "properties": {"provisioningState": "Succeeded"},
                    "_content": disk,
                    "_replication": {r: {"state": "Completed"} for r in regions},
                },
            )
        return rid


@pytest.fixture(scope="module")
def gallery(local: SandboxServer) -> Gallery:
    return Gallery(local.world)


def _gallery_pool(
    pool_id: str, image_id: str, agent: str = "batch.node.ubuntu 24.04", **kw: Any
) -> Any:
    vmc = bm.VirtualMachineConfiguration(
        image_reference=bm.BatchVmImageReference(virtual_machine_image_id=image_id),
        node_agent_sku_id=agent,
    )
    return pool_options(pool_id, virtual_machine_configuration=vmc, **kw)


def _refused(batch: BatchClient, pool_id: str, image_id: str) -> str:
    with pytest.raises(HttpResponseError) as refused:
        batch.create_pool(_gallery_pool(pool_id, image_id, target_dedicated_nodes=1))
    error = refused.value.error
    assert refused.value.status_code == 400 and error is not None
    assert error.code == "InvalidPropertyValue"
    details = {d.code: d.message for d in error.details}
    assert details["PropertyName"].endswith("imageReference.virtualMachineImageId")
    return details["Reason"]


def test_gallery_pool_nodes_idle_and_image_in_use(batch: BatchClient, gallery: Gallery) -> None:
    version = gallery.version("good")
    definition = version.rsplit("/versions/", 1)[0]
    batch.create_pool(_gallery_pool("good", definition, target_dedicated_nodes=2))
    nodes = wait_nodes(batch, "good", {"idle"}, 2)
    used = nodes[0].virtual_machine_info.image_reference.virtual_machine_image_id
    assert used == version  # a definition id means its latest version
    pool = batch.get_pool("good")
    assert pool.virtual_machine_configuration.image_reference.virtual_machine_image_id == definition
    world = gallery.world
    reason = facts.in_use_reason(world, version)
    assert reason is not None and "'good'" in reason
    batch.begin_delete_pool("good", polling_interval=0).result()
    assert facts.in_use_reason(world, version) is None


def test_create_time_refusals(batch: BatchClient, gallery: Gallery) -> None:
    missing = gallery.version("present").replace("/present/", "/absent/")
    assert "does not exist" in _refused(batch, "missing", missing)
    elsewhere = gallery.version("westonly", regions=("westeurope",))
    assert "no replica in region eastus" in _refused(batch, "region", elsewhere)
    managed = "/subscriptions/x/resourceGroups/g/providers/Microsoft.Compute/images/legacy"
    assert "Azure Compute Gallery" in _refused(batch, "managed", managed)

    with gallery.world.store.transaction():
        resources.add_subscription(gallery.world, OTHER_SUB, "other", registered=False)
    specialized = gallery.version("specialized", os_state="Specialized")
    assert "Specialized" in _refused(batch, "specialized", specialized)

    foreign = gallery.version("foreign", subscription=OTHER_SUB)
    assert "Microsoft.Batch" in _refused(batch, "foreign", foreign)
    with gallery.world.store.transaction():
        gallery.world.store.table("providers")[OTHER_SUB]["microsoft.batch"] = "Registered"
        gallery.world.store.touch()
    batch.create_pool(_gallery_pool("foreign", foreign))  # registered: accepted


@pytest.mark.parametrize(
    ("name", "image", "agent"),
    [
        ("mismatch", {}, "batch.node.ubuntu 22.04"),
        ("winlinux", {"source": WINDOWS, "os_type": "Windows"}, "batch.node.ubuntu 24.04"),
        ("notdeprov", {"deprovisioned": False}, None),
        ("extensions", {"extensions": ("CustomScript",)}, None),
    ],
)
def test_unusable_nodes_without_node_errors(
    batch: BatchClient, gallery: Gallery, name: str, image: dict[str, Any], agent: str | None
) -> None:
    """Batch publishes no node error code for an image that does not come up with the
    pool's agent: the node is unusable and reports no errors (Batch cannot reach it)."""
    version = gallery.version(name, **image)
    options = _gallery_pool(
        name, version, agent or "batch.node.ubuntu 24.04", target_dedicated_nodes=1
    )
    batch.create_pool(options)
    (node,) = wait_nodes(batch, name, {"unusable"}, 1)
    assert not node.errors
    assert node.virtual_machine_info.image_reference.virtual_machine_image_id == version
    counts = {c.pool_id: c for c in batch.list_pool_node_counts()}[name]
    assert counts.dedicated.unusable == 1


def _provider_error(batch: BatchClient, pool_id: str) -> dict[str, Any]:
    """The provider's error relayed in the pool's AllocationFailed resize error."""
    values = allocation_failed(batch, pool_id)
    assert values["Provider Error Json Truncated"] == "False"
    provider: dict[str, Any] = json.loads(values["Provider Error Json"])["error"]
    return provider


def test_vm_size_that_cannot_boot_the_generation(batch: BatchClient, gallery: Gallery) -> None:
    """A Gen2 image on a Gen1-only size: the pool is created, its VMs are refused by
    Compute, and the resize error relays that refusal (the Batch doc's example 1)."""
    version = gallery.version("gen2", generation="V2")
    batch.create_pool(
        _gallery_pool("gen2", version, vm_size="Standard_A1_v2", target_dedicated_nodes=1)
    )
    provider = _provider_error(batch, "gen2")
    assert provider["code"] == "BadRequest"
    assert "cannot boot Hypervisor Generation '2'" in provider["message"]
    assert not list(batch.list_nodes("gen2"))
    gen1 = gallery.version("gen1", generation="V1")
    batch.create_pool(
        _gallery_pool("gen1", gen1, vm_size="Standard_A1_v2", target_dedicated_nodes=1)
    )
    wait_nodes(batch, "gen1", {"idle"}, 1)


def test_image_no_longer_in_the_region(batch: BatchClient, gallery: Gallery) -> None:
    """New VMs of a pool whose image is no longer replicated to the account's region fail
    with Compute's GalleryImageNotFound, relayed in the resize error."""
    version = gallery.version("moved")
    batch.create_pool(_gallery_pool("moved", version))
    wait_steady(batch, "moved")
    with gallery.world.store.transaction():
        record = arm.get(gallery.world, version)
        assert record is not None
        record["_replication"] = {"westeurope": {"state": "Completed"}}
        gallery.world.store.touch()
    batch.begin_resize_pool(
        "moved", bm.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0
    ).result()
    provider = _provider_error(batch, "moved")
    assert provider["code"] == "GalleryImageNotFound"
    assert "is not available in eastus region" in provider["message"]


def test_windows_image_with_windows_agent(batch: BatchClient, gallery: Gallery) -> None:
    version = gallery.version("windows", source=WINDOWS, os_type="Windows")
    batch.create_pool(
        _gallery_pool("windows", version, "batch.node.windows amd64", target_dedicated_nodes=1)
    )
    (node,) = wait_nodes(batch, "windows", {"idle"}, 1)
    assert not node.errors


def test_resize_uses_the_latest_version(batch: BatchClient, gallery: Gallery) -> None:
    first = gallery.version("rolling", version="1.0.0")
    definition = first.rsplit("/versions/", 1)[0]
    batch.create_pool(_gallery_pool("rolling", definition, target_dedicated_nodes=1))
    wait_nodes(batch, "rolling", {"idle"}, 1)
    second = gallery.version("rolling", version="1.0.1")
    batch.begin_resize_pool(
        "rolling", bm.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=0
    ).result()
    nodes = wait_nodes(batch, "rolling", {"idle"}, 2)
    images = sorted(n.virtual_machine_info.image_reference.virtual_machine_image_id for n in nodes)
    assert images == [first, second]
    assert facts.in_use_reason(gallery.world, first) and facts.in_use_reason(gallery.world, second)
