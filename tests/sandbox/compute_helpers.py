"""Shared set-up for the Compute tests, all through the real SDK clients: a group with a
subnet, NICs, storage accounts, and VM bodies (Linux with an SSH key, Windows)."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network.models import (
    AddressSpace,
    NetworkInterface,
    NetworkInterfaceIPConfiguration,
    Subnet,
    VirtualNetwork,
)

from batchimage.azure.clients import AzureClients

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEDQczXJrvqX sandbox"
UBUNTU = {
    "publisher": "Canonical",
    "offer": "ubuntu-24_04-lts",
    "sku": "server",
    "version": "latest",
}
UBUNTU_GEN1 = {**UBUNTU, "sku": "server-gen1"}  # allows unmanaged disks (Gen2 images do not)
ALMA = {"publisher": "almalinux", "offer": "almalinux-x86_64", "sku": "9-gen2", "version": "latest"}
ALMA_PLAN = {"name": "9-gen2", "product": "almalinux-x86_64", "publisher": "almalinux"}
WINDOWS = {
    "publisher": "MicrosoftWindowsServer",
    "offer": "WindowsServer",
    "sku": "2022-datacenter-g2",
    "version": "latest",
}


def make_group(clients: AzureClients, name: str, location: str = "eastus") -> str:
    clients.resource.resource_groups.create_or_update(name, {"location": location})
    return name


def make_nic(clients: AzureClients, group: str, name: str, location: str = "eastus") -> str:
    """A NIC in subnet `default` of VNet `vnet` (made once per group); returns its id."""
    net = clients.network
    try:
        vnet = net.virtual_networks.get(group, "vnet")
    except ResourceNotFoundError:
        vnet = net.virtual_networks.begin_create_or_update(
            group,
            "vnet",
            VirtualNetwork(
                location=location,
                address_space=AddressSpace(address_prefixes=["10.20.0.0/16"]),
                subnets=[Subnet(name="default", address_prefix="10.20.0.0/24")],
            ),
        ).result()
    config = NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=Subnet(id=vnet.subnets[0].id))
    nic = net.network_interfaces.begin_create_or_update(
        group, name, NetworkInterface(location=location, ip_configurations=[config])
    ).result()
    return str(nic.id)


def make_storage(clients: AzureClients, group: str, name: str, location: str = "eastus") -> Any:
    """A StorageV2 account (served by Azurite); returns the account."""
    return clients.storage.storage_accounts.begin_create(
        group,
        name,
        {"location": location, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}},
    ).result()


def linux_body(
    nic_id: str,
    *,
    image: dict[str, Any] | None = None,
    size: str = "Standard_D2s_v5",
    location: str = "eastus",
    os_disk: dict[str, Any] | None = None,
    plan: dict[str, str] | None = None,
    nic_delete: str | None = None,
) -> dict[str, Any]:
    """A Linux VM body: SSH key only, private network, managed OS disk unless `os_disk`."""
    nic: dict[str, Any] = {"id": nic_id}
    if nic_delete:
        nic["properties"] = {"deleteOption": nic_delete}
    body: dict[str, Any] = {
        "location": location,
        "properties": {
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {
                "imageReference": image or UBUNTU,
                "osDisk": {"createOption": "FromImage", **(os_disk or {})},
            },
            "osProfile": {
                "computerName": "build",
                "adminUsername": "azureuser",
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": SSH_KEY}
                        ]
                    },
                },
            },
            "networkProfile": {"networkInterfaces": [nic]},
        },
    }
    if plan:
        body["plan"] = plan
    return body


def windows_body(nic_id: str, password: str, location: str = "eastus") -> dict[str, Any]:
    return {
        "location": location,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D4s_v5"},
            "storageProfile": {"imageReference": WINDOWS, "osDisk": {"createOption": "FromImage"}},
            "osProfile": {
                "computerName": "winbuild",
                "adminUsername": "azureuser",
                "adminPassword": password,
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
        },
    }


def create_vm(clients: AzureClients, group: str, name: str, body: dict[str, Any]) -> Any:
    return clients.compute.virtual_machines.begin_create_or_update(group, name, body).result()


# Deprovisioning a run command can report: a systemd unit a minute after the script returned
# (a foreground `waagent -deprovision` stops the guest agent, and the command never ends).
DEPROVISION_LATER = (
    "systemd-run --unit=deprovision --on-active=60 /bin/sh -c "
    "'waagent -deprovision+user -force && shutdown -h now'"
)


def deprovision(clients: AzureClients, admin: Any, group: str, name: str) -> None:
    """Deprovision Linux VM `name` as a guest does it (the run command returns first, the
    unit runs later: `admin.advance` moves simulated time past it) and see it power off."""
    body = {"commandId": "RunShellScript", "script": [DEPROVISION_LATER]}
    clients.compute.virtual_machines.begin_run_command(group, name, body).result()
    admin.advance(120)
    assert power_state(clients, group, name) == "stopped"


def error_code(err: HttpResponseError) -> str | None:
    return err.error.code if err.error is not None else None


def power_state(clients: AzureClients, group: str, name: str) -> str:
    view = clients.compute.virtual_machines.instance_view(group, name)
    codes = [s.code for s in view.statuses or [] if s.code and s.code.startswith("PowerState/")]
    return codes[0].split("/", 1)[1] if codes else ""


def account_blob(clients: AzureClients, group: str, account: Any, container: str, name: str) -> Any:
    """A blob client for `container/name` in `account`, signed with the account key."""
    key = clients.storage.storage_accounts.list_keys(group, account.name).keys_property[0].value
    credential = {"account_name": account.name, "account_key": key}
    service = clients.blob_service(account.primary_endpoints.blob, credential)
    return service.get_blob_client(container, name)


def container(clients: AzureClients, group: str, account: Any, name: str) -> Any:
    """A container client in `account` (created now), signed with the account key."""
    key = clients.storage.storage_accounts.list_keys(group, account.name).keys_property[0].value
    credential = {"account_name": account.name, "account_key": key}
    client = clients.blob_service(account.primary_endpoints.blob, credential)
    made = client.get_container_client(name)
    made.create_container()
    return made


def blob_sas_url(
    clients: AzureClients,
    group: str,
    account: Any,
    path: str,
    permission: Any,
    hours: float = 1,
) -> str:
    """The URL of blob `path` ("container/name") in `account` with a SAS signed by the
    account key (`permission`: BlobSasPermissions), valid `hours` from now."""
    import datetime as dt

    from azure.storage.blob import generate_blob_sas

    key = clients.storage.storage_accounts.list_keys(group, account.name).keys_property[0].value
    container_name, name = path.split("/", 1)
    token = generate_blob_sas(
        account.name,
        container_name,
        name,
        account_key=key,
        permission=permission,
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours),
    )
    return f"{account.primary_endpoints.blob}{path}?{token}"


def output_blob_url(clients: AzureClients, group: str, account: Any, name: str) -> str:
    """A SAS URL a run command can write its output or error to: blob `logs/<name>` in
    `account` (container made now), read/write/create/add for an hour."""
    from azure.storage.blob import BlobSasPermissions

    container(clients, group, account, "logs")
    permission = BlobSasPermissions(read=True, write=True, create=True, add=True)
    return blob_sas_url(clients, group, account, f"logs/{name}", permission)
