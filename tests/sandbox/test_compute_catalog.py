"""Marketplace image lists and properties, resource SKUs and usages through the real
ComputeManagementClient."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError

from batchimage.azure.clients import AzureClients


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
