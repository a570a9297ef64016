"""Marketplace image lists and properties (with versions published over time), resource
SKUs and usages through the real ComputeManagementClient."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.core.exceptions import ResourceNotFoundError

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.errors import SandboxError
from tests.sandbox.compute_helpers import create_vm, linux_body, make_group, make_nic


def test_marketplace_walk(clients: AzureClients) -> None:
    images = clients.compute.virtual_machine_images
    publishers = {p.name for p in images.list_publishers("eastus")}
    assert {"Canonical", "almalinux", "MicrosoftWindowsServer"} <= publishers
    assert [o.name for o in images.list_offers("westeurope", "almalinux")] == ["almalinux-x86_64"]
    skus = [s.name for s in images.list_skus("eastus", "MicrosoftWindowsServer", "WindowsServer")]
    assert skus == ["2019-datacenter", "2022-datacenter-g2"]
    versions = images.list("eastus", "Canonical", "ubuntu-24_04-lts", "server")
    names = [v.name for v in versions]
    assert names == sorted(names) and len(names) == 3
    newest = images.list(
        "eastus", "Canonical", "ubuntu-24_04-lts", "server", top=1, orderby="name desc"
    )
    assert [v.name for v in newest] == [names[-1]]
    assert "/Versions/" in versions[0].id


def test_image_properties_and_plan(clients: AzureClients) -> None:
    images = clients.compute.virtual_machine_images
    alma = images.get("eastus", "almalinux", "almalinux-x86_64", "9-gen2", "9.5.202501150")
    assert alma.plan.name == "9-gen2" and alma.plan.product == "almalinux-x86_64"
    assert alma.os_disk_image.operating_system == "Linux"
    assert (alma.hyper_v_generation, alma.architecture) == ("V2", "x64")
    windows = images.get(
        "eastus", "MicrosoftWindowsServer", "WindowsServer", "2019-datacenter", "17763.6659.241205"
    )
    assert windows.plan is None and windows.hyper_v_generation == "V1"
    assert windows.os_disk_image.operating_system == "Windows"
    ubuntu = images.get("eastus", "Canonical", "ubuntu-24_04-lts", "server", "24.04.202501140")
    assert {f.name for f in ubuntu.features} >= {"SecurityType", "DiskControllerTypes"}
    with pytest.raises(ResourceNotFoundError) as missing:
        images.get("eastus", "Canonical", "ubuntu-24_04-lts", "server", "1.0.0")
    assert missing.value.error is not None and missing.value.error.code == "NotFound"
    with pytest.raises(ResourceNotFoundError):
        list(images.list_offers("eastus", "NoSuchPublisher"))


def test_resource_skus_and_usages(clients: AzureClients) -> None:
    skus = {s.name: s for s in clients.compute.resource_skus.list(filter="location eq 'eastus'")}
    d4 = skus["Standard_D4s_v5"]
    caps = {c.name: c.value for c in d4.capabilities}
    assert (d4.family, caps["vCPUs"], caps["MemoryGB"]) == ("standardDSv5Family", "4", "16")
    assert d4.locations == ["eastus"]
    assert {"Standard_D2s_v3", "Standard_F2s_v2", "Standard_E2s_v5"} <= set(skus)
    everywhere = next(iter(clients.compute.resource_skus.list()))
    assert "westeurope" in everywhere.locations
    usages = {u.name.value: u for u in clients.compute.usage.list("japaneast")}
    assert usages["cores"].name.localized_value == "Total Regional vCPUs"
    assert usages["standardFSv2Family"].limit >= 1 and usages["cores"].unit == "Count"


def test_published_versions_join_the_catalogue(
    clients: AzureClients, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    """A version a publisher releases is listed with the catalogue's, in version order, is
    `latest` and can back a VM; one due later is listed only from its simulated time on."""
    images = clients.compute.virtual_machine_images
    sku = ("eastus", "Canonical", "ubuntu-22_04-lts", "server")
    before = [v.name for v in images.list(*sku)]
    newer, later = "22.04.202511050", "22.04.202512010"
    admin.publish_image("canonical", "UBUNTU-22_04-LTS", "server", newer)
    admin.publish_image("Canonical", "ubuntu-22_04-lts", "server", later, after_s=3600)
    try:
        assert [v.name for v in images.list(*sku)] == [*before, newer]
        newest = images.list(*sku, top=1, orderby="name desc")
        assert [v.name for v in newest] == [newer]
        image = images.get(*sku, newer)
        assert (image.hyper_v_generation, image.os_disk_image.operating_system) == ("V2", "Linux")
        assert {f.name for f in image.features} >= {"SecurityType"}
        published = {(p["sku"], p["version"]) for p in admin.published_images()}
        assert published >= {("server", newer), ("server", later)}

        group = make_group(clients, unique("rgpub"))
        latest = {"publisher": "Canonical", "offer": "ubuntu-22_04-lts", "sku": "server"}
        body = linux_body(make_nic(clients, group, "nic"), image={**latest, "version": "latest"})
        ref = create_vm(clients, group, "vm", body).storage_profile.image_reference
        assert (ref.version, ref.exact_version) == ("latest", newer)

        admin.advance(3600)
        assert [v.name for v in images.list(*sku)][-2:] == [newer, later]
    finally:
        admin.withdraw_image("Canonical", "ubuntu-22_04-lts", "server", newer)
        admin.withdraw_image("Canonical", "ubuntu-22_04-lts", "server", later)
    assert [v.name for v in images.list(*sku)] == before
    with pytest.raises(ResourceNotFoundError):
        images.get(*sku, newer)


def test_publishing_checks_what_it_is_given(admin: SandboxAdmin) -> None:
    with pytest.raises(SandboxError, match="no marketplace SKU"):
        admin.publish_image("Canonical", "ubuntu-24_04-lts", "no-such-sku", "24.04.1")
    with pytest.raises(SandboxError, match=r"Major\.Minor\.Build"):
        admin.publish_image("Canonical", "ubuntu-24_04-lts", "server", "latest")
    with pytest.raises(SandboxError, match="HTTP 404"):
        admin.withdraw_image("Canonical", "ubuntu-24_04-lts", "server", "24.04.202503180")


def test_a_deprecated_version_is_read_and_deployed_no_more(
    clients: AzureClients, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    """A version scheduled for deprecation says when and what instead (and still backs VMs);
    once deprecated (its date come, or marked so), reading it and a VM from it answer 404
    ImageVersionDeprecated; withdrawing it clears its status."""
    images = clients.compute.virtual_machine_images
    sku = ("eastus", "Canonical", "ubuntu-22_04-lts", "server")
    version = "22.04.202511060"
    admin.publish_image(*sku[1:], version)
    group = make_group(clients, unique("rgdep"))
    image = {"publisher": sku[1], "offer": sku[2], "sku": sku[3], "version": version}
    try:
        admin.deprecate_image(
            *sku[1:],
            version,
            scheduled="2099-03-01T00:00:00+00:00",
            alternative={"type": "Offer", "value": "ubuntu-24_04-lts"},
        )
        status = images.get(*sku, version).image_deprecation_status
        assert status.image_state == "ScheduledForDeprecation"
        assert status.scheduled_deprecation_time.isoformat() == "2099-03-01T00:00:00+00:00"
        assert (status.alternative_option.type, status.alternative_option.value) == (
            "Offer",
            "ubuntu-24_04-lts",
        )
        create_vm(clients, group, "vm1", linux_body(make_nic(clients, group, "nic1"), image=image))

        admin.deprecate_image(*sku[1:], version, scheduled="2020-01-01T00:00:00Z")  # passed
        with pytest.raises(ResourceNotFoundError) as read:
            images.get(*sku, version)
        assert read.value.error is not None and read.value.error.code == "ImageVersionDeprecated"
        assert read.value.error.message == (
            f"VM Image from publisher: Canonical with - Offer: ubuntu-22_04-lts, Sku: server, "
            f"Version: {version} is deprecated."
        )
        with pytest.raises(ResourceNotFoundError) as made:
            create_vm(
                clients, group, "vm2", linux_body(make_nic(clients, group, "nic2"), image=image)
            )
        assert made.value.error is not None and made.value.error.code == "ImageVersionDeprecated"
        assert made.value.error.target == "imageReference"
        assert version in [v.name for v in images.list(*sku)]  # still listed
        with pytest.raises(SandboxError, match="needs scheduledDeprecationTime"):
            admin.deprecate_image(*sku[1:], version)
        admin.deprecate_image(*sku[1:], version, state="Active")
        assert images.get(*sku, version).image_deprecation_status.image_state == "Active"
        admin.deprecate_image(*sku[1:], version, state="Deprecated")
    finally:
        admin.withdraw_image(*sku[1:], version)
    admin.publish_image(*sku[1:], version)
    try:
        assert images.get(*sku, version).image_deprecation_status.image_state == "Active"
    finally:
        admin.withdraw_image(*sku[1:], version)
