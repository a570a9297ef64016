"""Image definitions' SecurityType and the Trusted Launch rules, through the real SDK
clients: only documented SecurityType values (never "Standard"); a Trusted Launch VM
cannot feed a `*Supported` definition nor become a managed image; a TrustedLaunch
definition's versions back only Trusted Launch VMs and Batch pools that ask for it; a
Trusted Launch VM needs an image that can boot one. Each refusal is the request the tool
sent before it followed the rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.spec import load_spec_text
from batchimage.steps.gallery import wanted_definition
from tests.sandbox import batch_support
from tests.sandbox.batch_support import pool_options, wait_nodes, wait_steady
from tests.sandbox.compute_helpers import (
    UBUNTU,
    UBUNTU_GEN1,
    create_vm,
    deprovision,
    error_code,
    linux_body,
    make_group,
    make_nic,
)

batch = batch_support.batch  # fixture

TRUSTED = {
    "securityType": "TrustedLaunch",
    "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
}
SPEC = """
name: tl-check
cloud: sandbox
location: eastus
resource_group: rg
image:
  base: {marketplace: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}}
  capture:
    gallery:
      gallery: gal
      definition: {name: app, publisher: contoso, offer: batch, sku: ubuntu}
"""


def definition(security: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "osType": "Linux",
        "osState": "Generalized",
        "hyperVGeneration": "V2",
        "identifier": {"publisher": "contoso", "offer": "batch", "sku": str(security)},
    }
    if security is not None:
        props["features"] = [{"name": "SecurityType", "value": security}]
    return {"location": "eastus", "properties": props}


@pytest.fixture
def group(clients: AzureClients, unique: Callable[[str], str]) -> str:
    group = make_group(clients, unique("rgtl"))
    clients.compute.galleries.begin_create_or_update(group, "gal", {"location": "eastus"}).result()
    return group


def put_definition(clients: AzureClients, group: str, name: str, security: str | None) -> Any:
    images = clients.compute.gallery_images
    return images.begin_create_or_update(group, "gal", name, definition(security)).result()


def build_vm(
    clients: AzureClients, admin: SandboxAdmin, group: str, name: str, security: dict[str, Any]
) -> str:
    """A generalized VM with `security` as its securityProfile; returns its id."""
    body = linux_body(make_nic(clients, group, f"{name}-nic"))
    body["properties"]["securityProfile"] = security
    vm = create_vm(clients, group, name, body)
    vms = clients.compute.virtual_machines
    deprovision(clients, admin, group, name)
    vms.begin_deallocate(group, name).result()
    vms.generalize(group, name)
    return str(vm.id)


def version_from(clients: AzureClients, group: str, name: str, vm_id: str) -> Any:
    body = {
        "location": "eastus",
        "properties": {
            "publishingProfile": {"targetRegions": [{"name": "eastus"}]},
            "storageProfile": {"source": {"virtualMachineId": vm_id}},
        },
    }
    versions = clients.compute.gallery_image_versions
    return versions.begin_create_or_update(group, "gal", name, "1.0.0", body).result()


def test_security_type_takes_documented_values_only(clients: AzureClients, group: str) -> None:
    # the definition the tool sent for a Standard image before: SecurityType=Standard
    old = wanted_definition(load_spec_text(SPEC, check_files=False), None)
    old_body = old.body("eastus", {}, None)
    old_body["properties"]["features"] = [{"name": "SecurityType", "value": "Standard"}]
    with pytest.raises(HttpResponseError) as standard:
        clients.compute.gallery_images.begin_create_or_update(group, "gal", "old", old_body)
    err = standard.value
    assert err.status_code == 400 and error_code(err) == "InvalidParameter"
    assert err.error is not None and err.error.target == "galleryImage.properties.features"
    assert err.error.message == (
        "The value 'Standard' for feature 'SecurityType' is invalid. Allowed characters are "
        "English alphanumerical characters with spaces and commas. The length of the value "
        "cannot exceed 100 characters."
    )
    # what the tool sends now: no feature at all
    new = clients.compute.gallery_images.begin_create_or_update(
        group, "gal", "new", old.body("eastus", {}, None)
    ).result()
    assert new.provisioning_state == "Succeeded" and not new.features
    documented = (
        "TrustedLaunchSupported",
        "TrustedLaunch",
        "ConfidentialVmSupported",
        "ConfidentialVMSupported",  # Azure's docs spell it both ways
        "ConfidentialVM",
        "TrustedLaunchAndConfidentialVmSupported",
    )
    for index, value in enumerate(documented):
        made = put_definition(clients, group, f"d{index}", value)
        assert [(f.name, f.value) for f in made.features] == [("SecurityType", value)]


def test_trusted_launch_vm_feeds_trusted_launch_definitions_only(
    clients: AzureClients, group: str, admin: SandboxAdmin
) -> None:
    put_definition(clients, group, "supported", "TrustedLaunchSupported")
    put_definition(clients, group, "both", "TrustedLaunchAndConfidentialVmSupported")
    put_definition(clients, group, "trusted", "TrustedLaunch")
    # the build VM the tool made for a *Supported definition before: a Trusted Launch one
    trusted_vm = build_vm(clients, admin, group, "tlvm", TRUSTED)
    for name, security in (
        ("supported", "TrustedLaunchSupported"),
        ("both", "TrustedLaunchAndConfidentialVmSupported"),
    ):
        with pytest.raises(HttpResponseError) as refused:
            version_from(clients, group, name, trusted_vm)
        assert refused.value.status_code == 400 and error_code(refused.value) == "InvalidParameter"
        assert refused.value.error is not None
        assert refused.value.error.message == (
            f"The security type '{security}' is not supported for the source id "
            f"'{trusted_vm}'. Currently only Vhd Blob, User Image and Gallery Image Version "
            f"sources are supported for '{security}' images."
        )
    assert version_from(clients, group, "trusted", trusted_vm).provisioning_state == "Succeeded"
    standard_vm = build_vm(clients, admin, group, "stdvm", {"securityType": "Standard"})
    assert version_from(clients, group, "supported", standard_vm).provisioning_state == "Succeeded"


def test_no_managed_image_from_a_trusted_launch_vm(
    clients: AzureClients, group: str, admin: SandboxAdmin
) -> None:
    trusted_vm = build_vm(clients, admin, group, "tlvm", TRUSTED)
    body = {"location": "eastus", "properties": {"sourceVirtualMachine": {"id": trusted_vm}}}
    with pytest.raises(HttpResponseError) as refused:
        clients.compute.images.begin_create_or_update(group, "img", body).result()
    assert refused.value.status_code == 409 and error_code(refused.value) == "OperationNotAllowed"
    assert refused.value.error is not None and refused.value.error.message == (
        "Creation of managed images are not supported for virtual machine with TrustedLaunch "
        "security type."
    )
    standard_vm = build_vm(clients, admin, group, "stdvm", {"securityType": "Standard"})
    body["properties"]["sourceVirtualMachine"]["id"] = standard_vm
    made = clients.compute.images.begin_create_or_update(group, "img", body).result()
    assert made.provisioning_state == "Succeeded"


def test_trusted_launch_definition_backs_only_trusted_launch_vms(
    clients: AzureClients, group: str, admin: SandboxAdmin
) -> None:
    put_definition(clients, group, "trusted", "TrustedLaunch")
    version = version_from(
        clients, group, "trusted", build_vm(clients, admin, group, "tlvm", TRUSTED)
    )
    image = {"id": version.id}
    plain = linux_body(make_nic(clients, group, "nic1"), image=image)
    with pytest.raises(HttpResponseError) as refused:
        create_vm(clients, group, "plain", plain)
    assert refused.value.status_code == 400 and error_code(refused.value) == "BadRequest"
    assert refused.value.error is not None and refused.value.error.message == (
        "The provided gallery image only supports creation of VMs and VM Scale Sets with "
        "'TrustedLaunch' security type."
    )
    trusted = linux_body(make_nic(clients, group, "nic2"), image=image)
    trusted["properties"]["securityProfile"] = TRUSTED
    made = create_vm(clients, group, "trusted", trusted)
    assert made.security_profile.security_type == "TrustedLaunch"


def test_trusted_launch_vm_needs_an_image_that_boots_one(clients: AzureClients, group: str) -> None:
    gen1 = linux_body(make_nic(clients, group, "nic1"), image=UBUNTU_GEN1)
    gen1["properties"]["securityProfile"] = TRUSTED
    with pytest.raises(HttpResponseError) as refused:
        create_vm(clients, group, "gen1", gen1)
    assert refused.value.status_code == 400 and error_code(refused.value) == "BadRequest"
    assert "Use of TrustedLaunch setting is not supported for the provided image" in str(
        refused.value.message
    )
    gen2 = linux_body(make_nic(clients, group, "nic2"), image=UBUNTU)
    gen2["properties"]["securityProfile"] = TRUSTED
    assert create_vm(clients, group, "gen2", gen2).provisioning_state == "Succeeded"


def test_pool_on_a_trusted_launch_image_must_ask_for_it(
    clients: AzureClients,
    group: str,
    admin: SandboxAdmin,
    batch: BatchClient,
    unique: Callable[[str], str],
) -> None:
    put_definition(clients, group, "trusted", "TrustedLaunch")
    version = version_from(
        clients, group, "trusted", build_vm(clients, admin, group, "tlvm", TRUSTED)
    )
    vmc = bm.VirtualMachineConfiguration(
        image_reference=bm.BatchVmImageReference(virtual_machine_image_id=version.id),
        node_agent_sku_id="batch.node.ubuntu 24.04",
    )
    plain = unique("plain")  # the pool body the tool sent before: no securityProfile
    batch.create_pool(
        pool_options(plain, virtual_machine_configuration=vmc, target_dedicated_nodes=2)
    )
    pool = wait_steady(batch, plain)
    assert pool.current_dedicated_nodes == 0 and pool.resize_errors
    error = pool.resize_errors[0]
    assert error.code == "AllocationFailed"
    values = {v.name: v.value for v in error.error_values or []}
    assert (
        "only supports creation of VMs and VM Scale Sets with 'TrustedLaunch'"
        in values["Provider Error Json"]
    )
    vmc.security_profile = bm.SecurityProfile(
        security_type="trustedLaunch",
        uefi_settings=bm.BatchUefiSettings(secure_boot_enabled=True, vtpm_enabled=True),
    )
    trusted = unique("trusted")
    batch.create_pool(
        pool_options(trusted, virtual_machine_configuration=vmc, target_dedicated_nodes=2)
    )
    assert len(wait_nodes(batch, trusted, {"idle"}, 2)) == 2
    profile = batch.get_pool(trusted).virtual_machine_configuration.security_profile
    assert profile is not None and profile.security_type == "trustedLaunch"
    for pool_id in (plain, trusted):
        batch.begin_delete_pool(pool_id, polling_interval=0).result()
