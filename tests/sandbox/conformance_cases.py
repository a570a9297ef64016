"""Which official examples the sandbox replays (see conformance.py). Add a service's
examples here with the request they stand for and the prerequisites they need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from azure.mgmt.batch.models import AutoStorageBaseProperties, BatchAccountCreateParameters
from azure.mgmt.network.models import (
    AddressSpace,
    NetworkInterface,
    NetworkInterfaceIPConfiguration,
    PublicIPAddress,
    Subnet,
    VirtualNetwork,
)
from azure.mgmt.storage.models import (
    NetworkRuleSet,
    ResourceAccessRule,
    RoutingPreference,
    Sku,
    StorageAccountCreateParameters,
)

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.connection import Connection
from tests.sandbox.conformance import Case, replay

GROUP = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
PROVIDERS = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers"
Setup = Callable[[AzureClients, Connection], None]


def created_then_updated(example: str, path: str, setup: Setup | None = None) -> list[Case]:
    """The example's PUT as a create (201) and as an update (200); the update case makes the
    resource first, so it does not count on the create case having run in its sandbox."""
    create = Case(example, "PUT", path, 201, body="parameters", setup=setup)

    def made(clients: AzureClients, conn: Connection) -> None:
        if setup is not None:
            setup(clients, conn)
        replay(create, conn, clients)[0].raise_for_status()

    return [create, replace(create, status=200, setup=made)]


def _group(clients: AzureClients, name: str, location: str = "eastus") -> None:
    clients.resource.resource_groups.create_or_update(name, {"location": location})


def group_for_delete(clients: AzureClients, conn: Connection) -> None:
    _group(clients, "my-resource-group")


def network_rg1(clients: AzureClients, conn: Connection) -> None:
    """rg1 with rg1-vnet/default, public IP test-ip, and NIC test-nic using both (the
    examples' world: the public IP example shows the IP attached to a NIC)."""
    _group(clients, "rg1")
    net = clients.network
    vnet = net.virtual_networks.begin_create_or_update(
        "rg1",
        "rg1-vnet",
        VirtualNetwork(
            location="eastus",
            address_space=AddressSpace(address_prefixes=["172.20.0.0/16"]),
            subnets=[Subnet(name="default", address_prefix="172.20.2.0/24")],
        ),
    ).result()
    pip = net.public_ip_addresses.begin_create_or_update(
        "rg1", "test-ip", PublicIPAddress(location="eastus")
    ).result()
    config = NetworkInterfaceIPConfiguration(
        name="ipconfig1",
        subnet=Subnet(id=vnet.subnets[0].id),
        public_ip_address=PublicIPAddress(id=pip.id),
    )
    net.network_interfaces.begin_create_or_update(
        "rg1", "test-nic", NetworkInterface(location="eastus", ip_configurations=[config])
    ).result()


def storage_sto8596(clients: AzureClients, conn: Connection) -> None:
    """The account of the example: GRS, HNS, routing preference, a resource access rule."""
    _group(clients, "res9407", "eastus2")
    rule = ResourceAccessRule(
        tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47",
        resource_id=f"/subscriptions/{conn.subscription_id}/resourceGroups/res9407/providers/"
        "Microsoft.Synapse/workspaces/testworkspace",
    )
    params = StorageAccountCreateParameters(
        sku=Sku(name="Standard_GRS"),
        kind="Storage",
        location="eastus2",
        tags={"key1": "value1", "key2": "value2"},
        is_hns_enabled=True,
        routing_preference=RoutingPreference(
            routing_choice="MicrosoftRouting",
            publish_microsoft_endpoints=True,
            publish_internet_endpoints=True,
        ),
        network_rule_set=NetworkRuleSet(
            default_action="Allow", bypass="AzureServices", resource_access_rules=[rule]
        ),
    )
    body = params.as_dict() if hasattr(params, "as_dict") else dict(params)
    body.setdefault("properties", {})["geoPriorityReplicationStatus"] = {"isBlobEnabled": True}
    clients.storage.storage_accounts.begin_create("res9407", "sto8596", body).result()


def batch_sampleacct(clients: AzureClients, conn: Connection) -> None:
    _group(clients, "default-azurebatch-japaneast", "japaneast")
    storage = (
        f"/subscriptions/{conn.subscription_id}/resourceGroups/default-azurebatch-japaneast/"
        "providers/Microsoft.Storage/storageAccounts/samplestorage"
    )
    params = BatchAccountCreateParameters(
        location="japaneast", auto_storage=AutoStorageBaseProperties(storage_account_id=storage)
    )
    clients.batch_management.batch_account.begin_create(
        "default-azurebatch-japaneast", "sampleacct", params
    ).result()


CASES = [
    *created_then_updated("resources/2025-04-01/CreateResourceGroup.json", GROUP),
    Case(
        "resources/2024-03-01/ForceDeleteVMsAndVMSSInResourceGroup.json",
        "DELETE",
        GROUP,
        202,
        query={"forceDeletionTypes": "Microsoft.Compute/virtualMachines"},
        setup=group_for_delete,
    ),
    *created_then_updated(
        "network/2025-05-01/VirtualNetworkCreateSubnet.json",
        PROVIDERS + "/Microsoft.Network/virtualNetworks/{virtualNetworkName}",
        setup=lambda c, _: _group(c, "rg1"),
    ),
    Case(
        "network/2025-03-01/PublicIpAddressCreateDefaults.json",
        "PUT",
        PROVIDERS + "/Microsoft.Network/publicIPAddresses/{publicIpAddressName}",
        200,
        body="parameters",
        setup=network_rg1,
    ),
    Case(
        "network/2025-03-01/NetworkInterfaceCreate.json",
        "PUT",
        PROVIDERS + "/Microsoft.Network/networkInterfaces/{networkInterfaceName}",
        200,
        body="parameters",
        setup=network_rg1,
    ),
    Case(
        "storage/2025-06-01/StorageAccountGetProperties.json",
        "GET",
        PROVIDERS + "/Microsoft.Storage/storageAccounts/{accountName}",
        200,
        query={"$expand": "geoReplicationStats"},
        setup=storage_sto8596,
    ),
    Case(
        "batch-management/2025-06-01/BatchAccountGet.json",
        "GET",
        PROVIDERS + "/Microsoft.Batch/batchAccounts/{accountName}",
        200,
        setup=batch_sampleacct,
    ),
]


# -- Batch data plane (paths relative to the seeded Batch account's endpoint) -----------


def batch_pool(pool_id: str) -> Setup:
    """Setup: an Ubuntu 20.04 pool with a start task (the examples' pool), unless it exists."""
    return partial(_batch_pool, pool_id=pool_id)


def _batch_pool(clients: AzureClients, conn: Connection, pool_id: str) -> None:
    import contextlib

    from azure.batch import models as bm
    from azure.core.exceptions import ResourceExistsError

    batch = clients.batch(conn.batch_endpoint(conn.batch_account))
    identity = bm.UserIdentity(
        auto_user=bm.AutoUserSpecification(scope="task", elevation_level="nonadmin")
    )
    options = bm.BatchPoolCreateOptions(
        id=pool_id,
        vm_size="standard_a1",
        virtual_machine_configuration=bm.VirtualMachineConfiguration(
            image_reference=bm.BatchVmImageReference(
                publisher="Canonical", offer="0001-com-ubuntu-server-focal", sku="20_04-lts"
            ),
            node_agent_sku_id="batch.node.ubuntu 20.04",
        ),
        target_dedicated_nodes=0,
        start_task=bm.BatchStartTask(
            command_line="/bin/bash -c 'echo start task'",
            user_identity=identity,
            max_task_retry_count=0,
            wait_for_success=False,
        ),
    )
    with contextlib.suppress(ResourceExistsError):
        batch.create_pool(options)


BatchCase = partial(Case, plane="batch")  # paths relative to the Batch account endpoint

BATCH_CASES = [
    BatchCase(
        "batch-dataplane/2024-07-01.20.0/AccountListSupportedImages.json",
        "GET",
        "/supportedimages",
        200,
    ),
    BatchCase(
        "batch-dataplane/2025-06-01.21.0/Pools_CreatePool_VirtualMachineConfiguration.json",
        "POST",
        "/pools",
        201,
        body="pool",
    ),
    BatchCase(
        "batch-dataplane/2025-06-01/Pools_CreatePool_OSDisk.json",
        "POST",
        "/pools",
        201,
        body="pool",
    ),
    BatchCase(
        "batch-dataplane/2025-06-01.21.0/Pools_GetPool_Basic.json",
        "GET",
        "/pools/{poolId}",
        200,
        setup=batch_pool("pool"),
    ),
    BatchCase(
        "batch-dataplane/2025-06-01.21.0/Pools_PoolExists.json",
        "HEAD",
        "/pools/{poolId}",
        404,
    ),
    BatchCase(
        "batch-dataplane/2025-06-01.21.0/Pools_PoolExists.json",
        "HEAD",
        "/pools/{poolId}",
        200,
        setup=batch_pool("poolId"),
    ),
    BatchCase(
        "batch-dataplane/2025-06-01/Pools_DeletePool.json",
        "DELETE",
        "/pools/{poolId}",
        202,
        setup=batch_pool("poolId"),
    ),
]
CASES += BATCH_CASES

from tests.sandbox.conformance_compute import COMPUTE_CASES  # noqa: E402 - appended section

CASES += COMPUTE_CASES
