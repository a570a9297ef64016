"""Galleries, image definitions and versions (from a VM, a managed image, a VHD blob),
replication progress, managed images and disk export, through the real SDK clients."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from tests.sandbox.compute_helpers import (
    DEPROVISION_LATER,
    container,
    create_vm,
    deprovision,
    error_code,
    linux_body,
    make_group,
    make_nic,
    make_storage,
)

DEFINITION = {
    "location": "eastus",
    "properties": {
        "osType": "Linux",
        "osState": "Generalized",
        "hyperVGeneration": "V2",
        "identifier": {"publisher": "contoso", "offer": "batch", "sku": "ubuntu"},
        "features": [{"name": "SecurityType", "value": "TrustedLaunchSupported"}],
    },
}


@pytest.fixture
def group(clients: AzureClients, unique: Callable[[str], str]) -> str:
    return make_group(clients, unique("rggal"))


@pytest.fixture
def gallery(clients: AzureClients, group: str) -> str:
    clients.compute.galleries.begin_create_or_update(
        group, "gal", {"location": "eastus", "properties": {"description": "images"}}
    ).result()
    clients.compute.gallery_images.begin_create_or_update(group, "gal", "app", DEFINITION).result()
    return "gal"


def generalized_vm(
    clients: AzureClients, admin: SandboxAdmin, group: str, name: str, *script: str
) -> str:
    """A managed-disk VM customized with `script`, deprovisioned, deallocated, generalized."""
    vms = clients.compute.virtual_machines
    vm = create_vm(clients, group, name, linux_body(make_nic(clients, group, f"{name}-nic")))
    command = {"commandId": "RunShellScript", "script": list(script)}
    vms.begin_run_command(group, name, command).result()
    deprovision(clients, admin, group, name)
    vms.begin_deallocate(group, name).result()
    vms.generalize(group, name)
    return str(vm.id)


def version_body(source: dict[str, Any], *regions: str) -> dict[str, Any]:
    targets = [{"name": r} for r in (regions or ("eastus",))]
    return {
        "location": "eastus",
        "properties": {
            "publishingProfile": {"targetRegions": targets},
            "storageProfile": source,
        },
    }


def content_of(admin: SandboxAdmin, resource_id: str) -> dict[str, Any]:
    tables = admin.state()["tables"]
    found: dict[str, Any] = tables["compute_content"][
        tables["resources"][resource_id.lower()]["_content"]
    ]
    return found


@pytest.fixture
def slow_versions(admin: SandboxAdmin) -> Iterator[None]:
    admin.configure(durations={"gallery_image_version.create": 1500.0})
    yield
    admin.configure(durations={"gallery_image_version.create": 600.0})


def test_galleries_and_definitions(clients: AzureClients, group: str, gallery: str) -> None:
    compute = clients.compute
    got = compute.galleries.get(group, gallery)
    assert got.identifier.unique_name.endswith("-GAL") and got.description == "images"
    assert gallery in [g.name for g in compute.galleries.list_by_resource_group(group)]
    definition = compute.gallery_images.get(group, gallery, "app")
    assert (definition.os_type, definition.os_state, definition.hyper_v_generation) == (
        "Linux",
        "Generalized",
        "V2",
    )
    assert definition.features[0].value == "TrustedLaunchSupported"
    assert [d.name for d in compute.gallery_images.list_by_gallery(group, gallery)] == ["app"]
    with pytest.raises(HttpResponseError) as bad_name:
        compute.galleries.begin_create_or_update(group, "my-gallery", {"location": "eastus"})
    assert error_code(bad_name.value) == "InvalidParameter"
    changed = {**DEFINITION, "properties": {**DEFINITION["properties"], "osState": "Specialized"}}
    with pytest.raises(HttpResponseError) as immutable:
        compute.gallery_images.begin_create_or_update(group, gallery, "app", changed).result()
    assert error_code(immutable.value) == "PropertyChangeNotAllowed"
    with pytest.raises(ResourceNotFoundError) as parent:
        compute.gallery_images.begin_create_or_update(group, "nogallery", "x", DEFINITION)
    assert error_code(parent.value) == "ParentResourceNotFound"
    with pytest.raises(HttpResponseError) as nested:
        compute.galleries.begin_delete(group, gallery).result()
    assert nested.value.status_code == 409 and error_code(nested.value) == "CannotDeleteResource"


def test_version_from_vm_replicates_region_by_region(
    clients: AzureClients, group: str, gallery: str, admin: SandboxAdmin, slow_versions: None
) -> None:
    compute = clients.compute
    running = create_vm(clients, group, "live", linux_body(make_nic(clients, group, "live-nic")))
    source = {"source": {"virtualMachineId": running.id}}
    with pytest.raises(HttpResponseError) as specialized:
        compute.gallery_image_versions.begin_create_or_update(
            group, gallery, "app", "0.9.0", version_body(source)
        ).result()
    assert error_code(specialized.value) == "BadRequest"
    assert "different OS state ['Specialized']" in str(specialized.value.message)
    vm_id = generalized_vm(clients, admin, group, "build", "apt-get install -y ffmpeg")
    poller = compute.gallery_image_versions.begin_create_or_update(
        group,
        gallery,
        "app",
        "1.0.0",
        version_body({"source": {"virtualMachineId": vm_id}}, "East US", "West Europe"),
    )
    seen = set()
    deadline = time.monotonic() + 20
    while not poller.done() and time.monotonic() < deadline:
        got = compute.gallery_image_versions.get(
            group, gallery, "app", "1.0.0", expand="ReplicationStatus"
        )
        states = tuple(s.state for s in got.replication_status.summary)
        seen.add((got.provisioning_state, got.replication_status.aggregated_state, states))
        time.sleep(0.05)
    version = poller.result()
    assert ("Creating", "InProgress", ("Completed", "Replicating")) in seen
    assert version.provisioning_state == "Succeeded"
    assert version.publishing_profile.target_regions[1].regional_replica_count == 1
    disk = content_of(admin, version.id)
    assert disk["deprovisioned"] is True
    assert [m["script"] for m in disk["manifest"]] == [
        "apt-get install -y ffmpeg",
        DEPROVISION_LATER,
    ]
    latest = compute.gallery_image_versions.list_by_gallery_image(group, gallery, "app")
    assert [v.name for v in latest] == ["1.0.0"]
    with pytest.raises(HttpResponseError) as nested:
        compute.gallery_images.begin_delete(group, gallery, "app").result()
    assert error_code(nested.value) == "CannotDeleteResource"
    compute.gallery_image_versions.begin_delete(group, gallery, "app", "1.0.0").result()
    assert list(compute.gallery_image_versions.list_by_gallery_image(group, gallery, "app")) == []


def test_managed_image_and_version_from_it(
    clients: AzureClients, group: str, gallery: str, admin: SandboxAdmin
) -> None:
    compute = clients.compute
    running = create_vm(clients, group, "live", linux_body(make_nic(clients, group, "live-nic")))
    body = {"location": "eastus", "properties": {"sourceVirtualMachine": {"id": running.id}}}
    with pytest.raises(HttpResponseError) as not_generalized:
        compute.images.begin_create_or_update(group, "img", body).result()
    assert error_code(not_generalized.value) == "OperationNotAllowed"
    assert "to be Generalized" in str(not_generalized.value.message)
    vm_id = generalized_vm(clients, admin, group, "build", "echo baked > /etc/motd")
    body["properties"]["sourceVirtualMachine"]["id"] = vm_id
    image = compute.images.begin_create_or_update(group, "img", body).result()
    assert image.storage_profile.os_disk.os_state == "Generalized"
    assert image.storage_profile.os_disk.managed_disk.id
    assert image.hyper_v_generation == "V2"
    assert [i.name for i in compute.images.list_by_resource_group(group)] == ["img"]
    version = compute.gallery_image_versions.begin_create_or_update(
        group, gallery, "app", "2.0.0", version_body({"source": {"id": image.id}})
    ).result()
    assert content_of(admin, version.id)["manifest"][0]["script"] == "echo baked > /etc/motd"
    compute.images.begin_delete(group, "img").result()
    with pytest.raises(ResourceNotFoundError):
        compute.images.get(group, "img")


def test_disk_export_to_vhd_then_image_and_version(
    clients: AzureClients,
    group: str,
    gallery: str,
    admin: SandboxAdmin,
    unique: Callable[[str], str],
) -> None:
    compute = clients.compute
    generalized_vm(clients, admin, group, "build", "touch /opt/exported")
    disk_name = compute.virtual_machines.get(group, "build").storage_profile.os_disk.name
    grant = {"access": "Read", "durationInSeconds": 3600}
    access = compute.disks.begin_grant_access(group, disk_name, grant).result()
    assert compute.disks.get(group, disk_name).disk_state == "ActiveSAS"
    with pytest.raises(HttpResponseError) as active:
        compute.disks.begin_delete(group, disk_name).result()
    assert error_code(active.value) == "OperationNotAllowed"
    source = BlobClient.from_blob_url(access.access_sas, connection_verify=clients.profile.verify)
    size = source.get_blob_properties().size
    assert source.download_blob(offset=size - 512, length=8).readall() == b"conectix"

    account = make_storage(clients, group, unique("export"))
    target = container(clients, group, account, "vhds").get_blob_client("exported.vhd")
    target.start_copy_from_url(access.access_sas, requires_sync=False)
    deadline = time.monotonic() + 30
    while target.get_blob_properties().copy.status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert target.get_blob_properties().copy.status == "success"
    compute.disks.begin_revoke_access(group, disk_name).result()
    assert compute.disks.get(group, disk_name).disk_state == "Reserved"
    with pytest.raises(HttpResponseError) as revoked:
        source.get_blob_properties()
    assert revoked.value.status_code == 404

    image = compute.images.begin_create_or_update(
        group,
        "fromblob",
        {
            "location": "eastus",
            "properties": {
                "storageProfile": {
                    "osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": target.url}
                }
            },
        },
    ).result()
    assert content_of(admin, image.id)["manifest"][0]["script"] == "touch /opt/exported"
    slash = target.url.replace("/vhds/exported.vhd", "/vhds/a/b.vhd")
    with pytest.raises(HttpResponseError) as nested_name:
        compute.images.begin_create_or_update(
            group,
            "slash",
            {
                "location": "eastus",
                "properties": {
                    "storageProfile": {
                        "osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": slash}
                    }
                },
            },
        ).result()
    assert error_code(nested_name.value) == "InvalidParameter"
    from_vhd = {"osDiskImage": {"source": {"storageAccountId": account.id, "uri": target.url}}}
    version = compute.gallery_image_versions.begin_create_or_update(
        group, gallery, "app", "3.0.0", version_body(from_vhd)
    ).result()
    assert content_of(admin, version.id)["deprovisioned"] is True
    not_vhd = container(clients, group, account, "junk").get_blob_client("junk.vhd")
    not_vhd.upload_blob(b"\0" * 1024, blob_type="PageBlob")
    junk = {"osDiskImage": {"source": {"storageAccountId": account.id, "uri": not_vhd.url}}}
    with pytest.raises(HttpResponseError) as invalid:
        compute.gallery_image_versions.begin_create_or_update(
            group, gallery, "app", "3.0.1", version_body(junk)
        ).result()
    assert error_code(invalid.value) == "InvalidVhd"


def test_vms_from_gallery_versions_and_managed_images(
    clients: AzureClients, group: str, gallery: str, admin: SandboxAdmin
) -> None:
    compute = clients.compute
    vm_id = generalized_vm(clients, admin, group, "build", "apt-get install -y blender")
    image = compute.images.begin_create_or_update(
        group, "img", {"location": "eastus", "properties": {"sourceVirtualMachine": {"id": vm_id}}}
    ).result()
    version = compute.gallery_image_versions.begin_create_or_update(
        group, gallery, "app", "1.0.0", version_body({"source": {"virtualMachineId": vm_id}})
    ).result()
    definition_id = version.id.rsplit("/versions/", 1)[0]
    for name, reference in (
        ("fromversion", {"id": version.id}),
        ("fromlatest", {"id": definition_id}),
        ("fromimage", {"id": image.id}),
    ):
        body = linux_body(make_nic(clients, group, f"{name}-nic"), image=reference)
        vm = create_vm(clients, group, name, body)
        assert vm.storage_profile.image_reference.id == reference["id"]
        disk = compute.disks.get(group, vm.storage_profile.os_disk.name)
        found = content_of(admin, disk.id)
        assert found["deprovisioned"] is False  # provisioned again from the image
        assert found["manifest"][0]["script"] == "apt-get install -y blender"
    west = linux_body(
        make_nic(clients, group, "west-nic", "westeurope"),
        image={"id": version.id},
        location="westeurope",
    )
    with pytest.raises(HttpResponseError) as not_replicated:
        create_vm(clients, group, "west", west)
    assert not_replicated.value.status_code == 404
    assert error_code(not_replicated.value) == "GalleryImageNotFound"


def test_update_moves_a_version_in_and_out_of_latest(
    clients: AzureClients, group: str, gallery: str, admin: SandboxAdmin
) -> None:
    """PATCH (GalleryImageVersionUpdate) changes the publishing profile's updatable fields:
    excludeFromLatest decides what the definition id resolves to; endOfLifeDate is kept;
    storageAccountType is not updatable."""
    compute = clients.compute
    versions = compute.gallery_image_versions
    one = generalized_vm(clients, admin, group, "one", "echo one")
    two = generalized_vm(clients, admin, group, "two", "echo two")
    first = versions.begin_create_or_update(
        group, gallery, "app", "1.0.0", version_body({"source": {"virtualMachineId": one}})
    ).result()
    body = version_body({"source": {"virtualMachineId": two}})
    body["properties"]["publishingProfile"]["excludeFromLatest"] = True
    second = versions.begin_create_or_update(group, gallery, "app", "1.0.1", body).result()
    assert second.publishing_profile.exclude_from_latest is True
    definition_id = first.id.rsplit("/versions/", 1)[0]

    def latest(name: str) -> str:
        """The script baked into a VM made from the definition id (its latest version)."""
        nic = make_nic(clients, group, f"{name}-nic")
        vm = create_vm(clients, group, name, linux_body(nic, image={"id": definition_id}))
        disk = compute.disks.get(group, vm.storage_profile.os_disk.name)
        return str(content_of(admin, disk.id)["manifest"][0]["script"])

    assert latest("before") == "echo one"  # 1.0.1 is excluded from latest
    source = {"source": {"virtualMachineId": two}}
    with pytest.raises(HttpResponseError) as no_source:  # storageProfile is "Required"
        versions.begin_update(
            group, gallery, "app", "1.0.1", {"properties": {"publishingProfile": {}}}
        ).result()
    assert error_code(no_source.value) == "InvalidParameter"
    with pytest.raises(HttpResponseError) as moved:
        versions.begin_update(
            group,
            gallery,
            "app",
            "1.0.1",
            {"properties": {"storageProfile": {"source": {"virtualMachineId": one}}}},
        ).result()
    assert error_code(moved.value) == "PropertyChangeNotAllowed"
    update = {
        "properties": {
            "publishingProfile": {
                "excludeFromLatest": False,
                "endOfLifeDate": "2030-01-01T00:00:00Z",
            },
            "storageProfile": source,
        }
    }
    updated = versions.begin_update(group, gallery, "app", "1.0.1", update).result()
    assert updated.publishing_profile.exclude_from_latest is False
    assert updated.publishing_profile.end_of_life_date.year == 2030
    assert updated.provisioning_state == "Succeeded" and updated.tags == second.tags
    assert [r.name for r in updated.publishing_profile.target_regions] == ["eastus"]
    assert latest("after") == "echo two"
    with pytest.raises(HttpResponseError) as fixed:
        versions.begin_update(
            group,
            gallery,
            "app",
            "1.0.1",
            {
                "properties": {
                    "publishingProfile": {"storageAccountType": "Premium_LRS"},
                    "storageProfile": source,
                }
            },
        ).result()
    assert error_code(fixed.value) == "PropertyChangeNotAllowed"
