"""Microsoft.Network through the real NetworkManagementClient: VNets, subnets, NSGs,
public IPs, NICs, the in-use rules between them, and cascade delete with the group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.network.models import (
    AddressSpace,
    NetworkInterface,
    NetworkInterfaceIPConfiguration,
    NetworkSecurityGroup,
    PublicIPAddress,
    PublicIPAddressSku,
    SecurityRule,
    Subnet,
    VirtualNetwork,
)

from batchimage.azure.arm import NETWORK_API, SUBNET, VNET, exists
from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.core.refs import ResourceRef
from batchimage.sandbox.admin import SandboxAdmin
from tests.sandbox.conftest import TEST_TIME_SCALE


@pytest.fixture
def group(clients: AzureClients, unique: Callable[[str], str]) -> str:
    name = unique("rgnet")
    clients.resource.resource_groups.create_or_update(name, {"location": "eastus"})
    return name


def _vnet(clients: AzureClients, group: str, name: str = "vnet") -> VirtualNetwork:
    return clients.network.virtual_networks.begin_create_or_update(
        group,
        name,
        VirtualNetwork(
            location="eastus",
            address_space=AddressSpace(address_prefixes=["10.1.0.0/16"]),
            subnets=[Subnet(name="build", address_prefix="10.1.0.0/24")],
        ),
    ).result()


def _nic(subnet_id: str, **kwargs: object) -> NetworkInterface:
    config = NetworkInterfaceIPConfiguration(
        name="ipconfig1", subnet=Subnet(id=subnet_id), **kwargs
    )
    return NetworkInterface(location="eastus", ip_configurations=[config])


def test_vnet_and_subnets(clients: AzureClients, group: str) -> None:
    net = clients.network
    vnet = _vnet(clients, group)
    assert vnet.provisioning_state == "Succeeded"
    assert [s.name for s in vnet.subnets] == ["build"]
    extra = net.subnets.begin_create_or_update(
        group, "vnet", "extra", Subnet(address_prefix="10.1.1.0/24")
    ).result()
    assert extra.provisioning_state == "Succeeded"
    assert extra.id.endswith("/virtualNetworks/vnet/subnets/extra")
    assert {s.name for s in net.subnets.list(group, "vnet")} == {"build", "extra"}
    assert net.subnets.get(group, "vnet", "extra").address_prefix == "10.1.1.0/24"
    with pytest.raises(HttpResponseError) as overlap:
        net.subnets.begin_create_or_update(
            group, "vnet", "clash", Subnet(address_prefix="10.1.1.128/25")
        ).result()
    assert (
        overlap.value.error is not None and overlap.value.error.code == "NetcfgSubnetRangesOverlap"
    )
    with pytest.raises(HttpResponseError) as outside:
        net.subnets.begin_create_or_update(
            group, "vnet", "out", Subnet(address_prefix="10.9.0.0/24")
        ).result()
    assert (
        outside.value.error is not None
        and outside.value.error.code == "NetcfgSubnetRangeOutsideVnet"
    )
    net.subnets.begin_delete(group, "vnet", "extra").result()
    with pytest.raises(ResourceNotFoundError):
        net.subnets.get(group, "vnet", "extra")
    assert [v.name for v in net.virtual_networks.list(group)] == ["vnet"]
    assert "vnet" in [v.name for v in net.virtual_networks.list_all()]


def test_nic_uses_subnet_nsg_and_public_ip(clients: AzureClients, group: str) -> None:
    net = clients.network
    vnet = _vnet(clients, group)
    subnet_id = vnet.subnets[0].id
    rule = SecurityRule(
        name="deny-ssh",
        protocol="Tcp",
        access="Deny",
        direction="Inbound",
        priority=100,
        source_address_prefix="*",
        source_port_range="*",
        destination_address_prefix="*",
        destination_port_range="22",
    )
    nsg = net.network_security_groups.begin_create_or_update(
        group, "nsg", NetworkSecurityGroup(location="eastus", security_rules=[rule])
    ).result()
    assert [r.name for r in nsg.security_rules] == ["deny-ssh"]
    assert len(nsg.default_security_rules) == 6
    pip = net.public_ip_addresses.begin_create_or_update(
        group, "pip", PublicIPAddress(location="eastus")
    ).result()
    assert pip.sku.name == "Standard" and pip.public_ip_allocation_method == "Static"
    assert pip.ip_address
    body = _nic(subnet_id, public_ip_address=PublicIPAddress(id=pip.id))
    body.network_security_group = NetworkSecurityGroup(id=nsg.id)
    nic = net.network_interfaces.begin_create_or_update(group, "nic", body).result()
    config = nic.ip_configurations[0]
    assert config.private_ip_address == "10.1.0.4"
    assert config.subnet.id == subnet_id
    second = net.network_interfaces.begin_create_or_update(group, "nic2", _nic(subnet_id)).result()
    assert second.ip_configurations[0].private_ip_address == "10.1.0.5"
    assert net.public_ip_addresses.get(group, "pip").ip_configuration.id == config.id
    users = net.subnets.get(group, "vnet", "build").ip_configurations
    assert {u.id for u in users} == {config.id, second.ip_configurations[0].id}
    assert net.network_security_groups.get(group, "nsg").network_interfaces[0].id == nic.id

    for delete, code in [
        (
            lambda: net.public_ip_addresses.begin_delete(group, "pip").result(),
            "PublicIPAddressCannotBeDeleted",
        ),
        (
            lambda: net.network_security_groups.begin_delete(group, "nsg").result(),
            "InUseNetworkSecurityGroupCannotBeDeleted",
        ),
        (
            lambda: net.subnets.begin_delete(group, "vnet", "build").result(),
            "InUseSubnetCannotBeDeleted",
        ),
        (
            lambda: net.virtual_networks.begin_delete(group, "vnet").result(),
            "InUseSubnetCannotBeDeleted",
        ),
    ]:
        with pytest.raises(HttpResponseError) as err:
            delete()
        assert err.value.status_code == 400
        assert err.value.error is not None and err.value.error.code == code

    net.network_interfaces.begin_delete(group, "nic").result()
    net.network_interfaces.begin_delete(group, "nic2").result()
    net.public_ip_addresses.begin_delete(group, "pip").result()
    net.network_security_groups.begin_delete(group, "nsg").result()
    net.virtual_networks.begin_delete(group, "vnet").result()
    assert list(net.virtual_networks.list(group)) == []


def test_references_and_names_are_checked(clients: AzureClients, group: str) -> None:
    net = clients.network
    missing = (
        f"/subscriptions/{clients.subscription_id}/resourceGroups/{group}/providers/"
        "Microsoft.Network/virtualNetworks/none/subnets/none"
    )
    with pytest.raises(HttpResponseError) as ref:
        net.network_interfaces.begin_create_or_update(group, "nic", _nic(missing)).result()
    assert ref.value.error is not None and ref.value.error.code == "InvalidResourceReference"
    with pytest.raises(HttpResponseError) as name:
        net.public_ip_addresses.begin_create_or_update(
            group, "-bad", PublicIPAddress(location="eastus")
        ).result()
    assert name.value.error is not None and name.value.error.code == "InvalidResourceName"
    with pytest.raises(ResourceNotFoundError) as gone:
        net.virtual_networks.get(group, "nothing")
    assert gone.value.error is not None and gone.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as nogroup:
        net.virtual_networks.get(group + "x", "nothing")
    assert nogroup.value.error is not None and nogroup.value.error.code == "ResourceGroupNotFound"


def test_busy_resource_refuses_another_operation(
    clients: AzureClients, admin: SandboxAdmin, group: str
) -> None:
    admin.configure(durations={"network.create": 2000.0})
    try:
        poller = clients.network.public_ip_addresses.begin_create_or_update(
            group, "busy", PublicIPAddress(location="eastus")
        )
        with pytest.raises(HttpResponseError) as err:
            clients.network.public_ip_addresses.begin_delete(group, "busy").result()
        assert err.value.status_code == 409
        assert err.value.error is not None and err.value.error.code == "AnotherOperationInProgress"
        assert poller.result().provisioning_state == "Succeeded"
    finally:
        admin.configure(durations={"network.create": 5.0})


def test_group_delete_cascades(clients: AzureClients, group: str) -> None:
    _vnet(clients, group)
    clients.network.public_ip_addresses.begin_create_or_update(
        group, "pip", PublicIPAddress(location="eastus")
    ).result()
    clients.resource.resource_groups.begin_delete(group).result()
    clients.resource.resource_groups.create_or_update(group, {"location": "eastus"})
    assert list(clients.network.virtual_networks.list(group)) == []
    assert list(clients.network.public_ip_addresses.list(group)) == []


def test_standard_public_ip_must_be_static(clients: AzureClients, group: str) -> None:
    """A Standard SKU public IP with Dynamic allocation: 400 with Network's code and text
    (MicrosoftDocs/azure-docs#42889)."""
    body = PublicIPAddress(
        location="eastus",
        sku=PublicIPAddressSku(name="Standard"),
        public_ip_allocation_method="Dynamic",
    )
    with pytest.raises(HttpResponseError) as bad:
        clients.network.public_ip_addresses.begin_create_or_update(group, "dyn", body).result()
    assert bad.value.status_code == 400 and bad.value.error is not None
    assert bad.value.error.code == "StandardSkuPublicIPAddressesMustBeStatic"
    assert bad.value.error.message == (
        f"Standard sku publicIp /subscriptions/{clients.subscription_id}/resourceGroups/{group}"
        "/providers/Microsoft.Network/publicIPAddresses/dyn must have AllocationMethod set to "
        "Static."
    )


def test_exists_reads_network_resources_by_id_at_the_network_sdks_api_version(
    clients: AzureClients, cloud: CloudProfile, group: str
) -> None:
    """`arm.exists` of a VNet, subnet or NSG is the network SDK's own GET, sent through the
    resource client: a cleanup check does not build (nor import) the network client."""
    vnet = _vnet(clients, group)
    sent: list[str] = []
    clients.network.virtual_networks.get(
        group, "vnet", raw_request_hook=lambda r: sent.append(r.http_request.url)
    )
    assert f"api-version={NETWORK_API}" in sent[0]  # the SDK's version, pinned in arm.py

    fresh = AzureClients(cloud)
    subnet = str(vnet.subnets[0].id)
    assert exists(fresh, ResourceRef(id=str(vnet.id), kind=VNET))
    assert exists(fresh, ResourceRef(id=subnet, kind=SUBNET))
    assert not exists(fresh, ResourceRef(id=subnet.replace("/build", "/gone"), kind=SUBNET))
    assert not exists(fresh, ResourceRef(id=str(vnet.id) + "x", kind=VNET))
    assert "network" not in vars(fresh)  # the network client was never built


def test_answers_ask_for_the_polls_azure_asks_for(
    clients: AzureClients, admin: SandboxAdmin, group: str
) -> None:
    """The Retry-After of Azure's recorded answers, scaled (under a second as
    `retry-after-ms`): a VNet PUT 3 s, then 10 s on each poll while it runs; a group delete
    15 s on each; a NIC create is answered Succeeded, naming an operation already ended and
    asking for no wait."""
    asked: list[tuple[str, str, str | None]] = []
    headers: list[Any] = []

    def keep(response: object) -> None:
        http = response.http_response  # type: ignore[attr-defined]
        headers.append(http.headers)
        ms = http.headers.get("retry-after-ms")
        asked.append((http.request.method, http.request.url.split("?")[0].rsplit("/", 2)[-2], ms))

    admin.configure(time_scale=0.01)
    try:
        vnet = clients.network.virtual_networks.begin_create_or_update(
            group,
            "polled",
            VirtualNetwork(
                location="eastus",
                address_space=AddressSpace(address_prefixes=["10.2.0.0/16"]),
                subnets=[Subnet(name="build", address_prefix="10.2.0.0/24")],
            ),
            raw_response_hook=keep,
        ).result()
        vnet_answers, asked[:] = list(asked), []
        nic = clients.network.network_interfaces.begin_create_or_update(
            group, "at-once", _nic(vnet.subnets[0].id), polling=False, raw_response_hook=keep
        ).result()
        nic_answers, asked[:] = list(asked), []
        clients.network.network_interfaces.begin_delete(group, "at-once").result()
        clients.resource.resource_groups.begin_delete(group, raw_response_hook=keep).result()
    finally:
        admin.configure(time_scale=float(TEST_TIME_SCALE))
    assert vnet_answers[0] == ("PUT", "virtualNetworks", "30")
    assert {a for a in vnet_answers[1:] if a[2]} == {("GET", "operations", "100")}
    assert vnet_answers[-1][2] is None  # the poll that saw it end
    assert nic.provisioning_state == "Succeeded"
    assert nic_answers == [("PUT", "networkInterfaces", None)]
    status_url = headers[len(vnet_answers)]["Azure-AsyncOperation"]
    status = clients.network._client.send_request(HttpRequest("GET", status_url))
    assert status.json()["status"] == "Succeeded"
    assert asked[0] == ("DELETE", "resourcegroups", "150")
    assert {a[2] for a in asked[1:-1]} == {"150"} and asked[-1][2] is None
