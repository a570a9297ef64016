"""All the clients of one `AzureClients` share one pool of kept-alive connections: calls
made one after another through different SDK clients open one TLS connection to ARM."""

from __future__ import annotations

from urllib.parse import urlsplit

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile


def test_clients_in_turn_reuse_one_connection(cloud: CloudProfile) -> None:
    clients = AzureClients(cloud)
    list(clients.resource.resource_groups.list())
    list(clients.network.virtual_networks.list_all())
    list(clients.compute.virtual_machines.list_all())
    list(clients.storage.storage_accounts.list())
    pools = clients._session.get_adapter("https://").poolmanager.pools
    port = urlsplit(cloud.arm_endpoint).port
    arm = [pools[key] for key in pools.keys() if key.key_port == port]  # noqa: SIM118
    assert len(arm) == 1
    assert arm[0].num_connections == 1  # without sharing: one per SDK client, 4
