"""Virtual machines through the real ComputeManagementClient: create from the marketplace
(managed and unmanaged OS disk), instance view, power operations, generalize, delete
options, and the checks Azure makes (image, plan, NIC, size, password, quota, unmanaged
disks retired in public Azure and disallowed by Gen2 images)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from batchimage.azure.clients import AzureClients
from batchimage.core.vhd_footer import parse_footer
from batchimage.sandbox.admin import SandboxAdmin
from tests.sandbox.compute_helpers import (
    ALMA,
    ALMA_PLAN,
    UBUNTU,
    UBUNTU_GEN1,
    account_blob,
    create_vm,
    error_code,
    linux_body,
    make_group,
    make_nic,
    make_storage,
    power_state,
    windows_body,
)


@pytest.fixture
def group(clients: AzureClients, unique: Callable[[str], str]) -> str:
    return make_group(clients, unique("rgvm"))


def test_create_from_marketplace_with_managed_disk(clients: AzureClients, group: str) -> None:
    nic_id = make_nic(clients, group, "nic")
    vm = create_vm(clients, group, "build", linux_body(nic_id))
    assert vm.provisioning_state == "Succeeded"
    ref = vm.storage_profile.image_reference
    assert ref.version == "latest" and ref.exact_version == "24.04.202503180"
    assert vm.os_profile.linux_configuration.disable_password_authentication is True
    disk_id = vm.storage_profile.os_disk.managed_disk.id
    disk = clients.compute.disks.get(group, disk_id.rsplit("/", 1)[1])
    assert (disk.disk_state, disk.managed_by, disk.os_type) == ("Attached", vm.id, "Linux")
    assert disk.disk_size_gb == 30 and disk.hyper_v_generation == "V2"
    nic = clients.network.network_interfaces.get(group, "nic")
    assert nic.virtual_machine.id == vm.id
    view = clients.compute.virtual_machines.get(group, "build", expand="instanceView").instance_view
    codes = [s.code for s in view.statuses]
    assert codes == ["ProvisioningState/succeeded", "PowerState/running"]
    assert view.vm_agent.statuses[0].display_status == "Ready"
    assert (view.os_name, view.os_version) == ("ubuntu", "24.04")
    assert "build" in [v.name for v in clients.compute.virtual_machines.list(group)]
    assert vm.id in [v.id for v in clients.compute.virtual_machines.list_all()]


def test_power_operations_and_generalize(clients: AzureClients, group: str) -> None:
    vms = clients.compute.virtual_machines
    create_vm(clients, group, "vm", linux_body(make_nic(clients, group, "nic")))
    with pytest.raises(HttpResponseError) as running:
        vms.generalize(group, "vm")
    assert running.value.status_code == 409 and error_code(running.value) == "OperationNotAllowed"
    assert "since the VM is running" in str(running.value.message)
    vms.begin_power_off(group, "vm").result()
    assert power_state(clients, group, "vm") == "stopped"
    vms.begin_start(group, "vm").result()
    vms.begin_restart(group, "vm").result()
    assert power_state(clients, group, "vm") == "running"
    vms.begin_deallocate(group, "vm").result()
    assert power_state(clients, group, "vm") == "deallocated"
    disk_name = vms.get(group, "vm").storage_profile.os_disk.name
    assert clients.compute.disks.get(group, disk_name).disk_state == "Reserved"
    with pytest.raises(HttpResponseError) as restart:
        vms.begin_restart(group, "vm").result()
    assert error_code(restart.value) == "OperationNotAllowed"
    vms.generalize(group, "vm")
    codes = [s.code for s in vms.instance_view(group, "vm").statuses]
    assert "OSState/generalized" in codes
    with pytest.raises(HttpResponseError) as start:
        vms.begin_start(group, "vm").result()
    assert error_code(start.value) == "OperationNotAllowed"
    assert "since the VM is generalized" in str(start.value.message)


def test_delete_options(clients: AzureClients, group: str) -> None:
    vms, compute = clients.compute.virtual_machines, clients.compute
    kept = create_vm(clients, group, "kept", linux_body(make_nic(clients, group, "nic1")))
    gone = create_vm(
        clients,
        group,
        "gone",
        linux_body(
            make_nic(clients, group, "nic2"),
            os_disk={"deleteOption": "Delete", "name": "gone-os"},
            nic_delete="Delete",
        ),
    )
    assert gone.storage_profile.os_disk.name == "gone-os"
    with pytest.raises(HttpResponseError) as attached:
        compute.disks.begin_delete(group, "gone-os").result()
    assert error_code(attached.value) == "OperationNotAllowed"
    vms.begin_delete(group, "kept").result()
    vms.begin_delete(group, "gone").result()
    disk = compute.disks.get(group, kept.storage_profile.os_disk.name)
    assert disk.disk_state == "Unattached" and disk.managed_by is None
    assert clients.network.network_interfaces.get(group, "nic1").virtual_machine is None
    with pytest.raises(ResourceNotFoundError):
        compute.disks.get(group, "gone-os")
    with pytest.raises(ResourceNotFoundError):
        clients.network.network_interfaces.get(group, "nic2")
    compute.disks.begin_delete(group, disk.name).result()
    assert [d.name for d in compute.disks.list_by_resource_group(group)] == []


def test_public_azure_refuses_unmanaged_os_disks(
    clients: AzureClients, group: str, unique: Callable[[str], str]
) -> None:
    """The classic flow's build VM (an unmanaged OS disk) as public Azure answers it now."""
    account = make_storage(clients, group, unique("vhds"))
    uri = f"{account.primary_endpoints.blob}vhds/build-os.vhd"
    for image in (UBUNTU, UBUNTU_GEN1):
        body = linux_body(
            make_nic(clients, group, "nic"), image=image, os_disk={"vhd": {"uri": uri}}
        )
        with pytest.raises(HttpResponseError) as retired:
            create_vm(clients, group, "classic", body)
        assert retired.value.status_code == 400 and error_code(retired.value) == "BadRequest"
        assert retired.value.error.message.startswith("Unmanaged disks have been retired.")
    assert not account_blob(clients, group, account, "vhds", "build-os.vhd").exists()


def test_gen2_images_disallow_unmanaged_disks(
    clients: AzureClients, group: str, unique: Callable[[str], str], stack_hub: object
) -> None:
    """A cloud that still serves unmanaged disks refuses them on an image that disallows
    them, as every Gen2 marketplace image reports."""
    images = clients.compute.virtual_machine_images
    for image, disallowed in ((UBUNTU, "Unmanaged"), (UBUNTU_GEN1, "None")):
        raw = images.get(
            "eastus", image["publisher"], image["offer"], image["sku"], "24.04.202503180"
        )
        assert raw.disallowed.vm_disk_type == disallowed
    account = make_storage(clients, group, unique("vhds"))
    uri = f"{account.primary_endpoints.blob}vhds/build-os.vhd"
    body = linux_body(make_nic(clients, group, "nic"), image=UBUNTU, os_disk={"vhd": {"uri": uri}})
    with pytest.raises(HttpResponseError) as gen2:
        create_vm(clients, group, "classic", body)
    assert gen2.value.status_code == 400 and error_code(gen2.value) == "BadRequest"
    assert "not supported for creating a Virtual Machine with unmanaged disks" in str(
        gen2.value.message
    )


@pytest.mark.usefixtures("stack_hub")
def test_unmanaged_os_disk_is_a_vhd_page_blob(
    clients: AzureClients, group: str, unique: Callable[[str], str]
) -> None:
    account = make_storage(clients, group, unique("vhds"))
    uri = f"{account.primary_endpoints.blob}vhds/build-os.vhd"
    body = linux_body(
        make_nic(clients, group, "nic"),
        image=UBUNTU_GEN1,
        os_disk={"name": "build-os", "vhd": {"uri": uri}},
    )
    vm = create_vm(clients, group, "classic", body)
    assert (
        vm.storage_profile.os_disk.vhd.uri == uri
        and vm.storage_profile.os_disk.managed_disk is None
    )
    blob = account_blob(clients, group, account, "vhds", "build-os.vhd")
    props = blob.get_blob_properties()
    assert props.blob_type == "PageBlob" and props.size == 30 * 1024**3 + 512
    footer = parse_footer(blob.download_blob(offset=props.size - 512, length=512).readall())
    assert footer is not None and footer.checksum_ok and footer.disk_type_name == "fixed"
    again = linux_body(
        make_nic(clients, group, "nic2"), image=UBUNTU_GEN1, os_disk={"vhd": {"uri": uri}}
    )
    with pytest.raises(HttpResponseError) as exists:
        create_vm(clients, group, "classic2", again)
    assert exists.value.status_code == 409 and "already exists" in str(exists.value.message)
    elsewhere = "https://nowhere.blob.core.windows.net/vhds/x.vhd"
    with pytest.raises(HttpResponseError) as foreign:
        create_vm(
            clients,
            group,
            "classic3",
            linux_body(
                make_nic(clients, group, "nic3"),
                image=UBUNTU_GEN1,
                os_disk={"vhd": {"uri": elsewhere}},
            ),
        )
    assert error_code(foreign.value) == "InvalidParameter"


def test_image_plan_nic_and_size_checks(clients: AzureClients, group: str) -> None:
    nic_id = make_nic(clients, group, "nic")
    missing = {**ALMA, "sku": "8-gen2"}
    with pytest.raises(HttpResponseError) as image:
        create_vm(clients, group, "vm", linux_body(nic_id, image=missing))
    assert image.value.status_code == 404 and error_code(image.value) == "PlatformImageNotFound"
    with pytest.raises(HttpResponseError) as plan:
        create_vm(clients, group, "vm", linux_body(nic_id, image=ALMA))
    assert error_code(plan.value) == "VMMarketplaceInvalidInput"
    with pytest.raises(HttpResponseError) as size:
        create_vm(clients, group, "vm", linux_body(nic_id, size="Standard_Z99"))
    assert error_code(size.value) == "InvalidParameter"
    gone = nic_id.replace("/nic", "/none")
    with pytest.raises(HttpResponseError) as nic:
        create_vm(clients, group, "vm", linux_body(gone))
    assert error_code(nic.value) == "InvalidResourceReference"
    alma = create_vm(clients, group, "alma", linux_body(nic_id, image=ALMA, plan=ALMA_PLAN))
    assert alma.plan.name == "9-gen2"
    assert alma.storage_profile.image_reference.exact_version == "9.6.202505220"
    with pytest.raises(HttpResponseError) as in_use:
        create_vm(clients, group, "other", linux_body(nic_id))
    assert error_code(in_use.value) == "NicInUse"


def test_windows_password_is_checked_and_never_stored(
    clients: AzureClients, group: str, admin: SandboxAdmin
) -> None:
    nic_id = make_nic(clients, group, "nic")
    with pytest.raises(HttpResponseError) as weak:
        create_vm(clients, group, "win", windows_body(nic_id, "password"))
    assert error_code(weak.value) == "InvalidParameter"
    assert weak.value.error is not None and weak.value.error.target == "adminPassword"
    secret = "Sandbox-Secret-4711!"
    vm = create_vm(clients, group, "win", windows_body(nic_id, secret))
    assert vm.os_profile.admin_password is None
    assert vm.os_profile.windows_configuration.provision_vm_agent is True
    view = clients.compute.virtual_machines.instance_view(group, "win")
    assert view.os_name == "Windows Server 2022 Datacenter"
    assert secret not in str(admin.state())


def test_core_quota(clients: AzureClients, group: str, admin: SandboxAdmin) -> None:
    usages = {u.name.value: u for u in clients.compute.usage.list("westus2")}
    before = usages["standardDSv5Family"].current_value
    admin.configure(compute={"quota": {"standardDSv5Family": before + 2}})
    try:
        body = linux_body(make_nic(clients, group, "nic1", "westus2"), location="westus2")
        create_vm(clients, group, "first", body)
        usages = {u.name.value: u for u in clients.compute.usage.list("westus2")}
        assert usages["standardDSv5Family"].current_value == before + 2
        assert usages["standardDSv5Family"].limit == before + 2
        second = linux_body(make_nic(clients, group, "nic2", "westus2"), location="westus2")
        with pytest.raises(HttpResponseError) as over:
            create_vm(clients, group, "second", second)
        assert over.value.status_code == 409 and error_code(over.value) == "OperationNotAllowed"
        assert "exceeding approved standardDSv5Family Cores quota" in str(over.value.message)
        assert f"Current Limit: {before + 2}" in str(over.value.message)
        clients.compute.virtual_machines.begin_deallocate(group, "first").result()
        create_vm(clients, group, "second", second)
        with pytest.raises(HttpResponseError) as restart:
            clients.compute.virtual_machines.begin_start(group, "first").result()
        assert error_code(restart.value) == "OperationNotAllowed"
    finally:
        admin.configure(compute={"quota": {}})


def test_group_delete_takes_compute_resources_along(clients: AzureClients, group: str) -> None:
    body = linux_body(
        make_nic(clients, group, "nic"), os_disk={"deleteOption": "Delete"}, nic_delete="Delete"
    )
    create_vm(clients, group, "vm", body)
    clients.compute.galleries.begin_create_or_update(group, "g", {"location": "eastus"}).result()
    clients.resource.resource_groups.begin_delete(group).result()
    make_group(clients, group)
    assert list(clients.compute.virtual_machines.list(group)) == []
    assert list(clients.compute.disks.list_by_resource_group(group)) == []
    assert list(clients.compute.galleries.list_by_resource_group(group)) == []
    assert list(clients.network.network_interfaces.list(group)) == []
