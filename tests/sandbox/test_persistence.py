"""The sandbox's world survives a restart, and operations keep running while it is down."""

from __future__ import annotations

import time
from pathlib import Path

from azure.mgmt.network.models import AddressSpace, VirtualNetwork
from azure.mgmt.storage.models import Sku, StorageAccountCreateParameters

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.runtime import start


def test_state_survives_restart(tmp_path: Path) -> None:
    folder = tmp_path / "sb"
    env = {"BATCHIMAGE_SANDBOX_TIME_SCALE": "0.001"}
    first = start(folder, env=env)
    try:
        clients = AzureClients(sandbox_profile(first.connection))
        clients.resource.resource_groups.create_or_update("keep", {"location": "eastus"})
        params = StorageAccountCreateParameters(
            sku=Sku(name="Standard_LRS"), kind="StorageV2", location="eastus"
        )
        clients.storage.storage_accounts.begin_create("keep", "keepstore", params).result()
        key = clients.storage.storage_accounts.list_keys("keep", "keepstore").keys_property[0].value
        credential = {"account_name": "keepstore", "account_key": key}
        endpoint = clients.storage.storage_accounts.get_properties(
            "keep", "keepstore"
        ).primary_endpoints.blob
        clients.blob_service(endpoint, credential).create_container("kept").upload_blob(
            "a.txt", b"still here"
        )
        SandboxAdmin(first.connection).configure(durations={"network.create": 1500.0})
        vnet = VirtualNetwork(
            location="eastus", address_space=AddressSpace(address_prefixes=["10.0.0.0/16"])
        )
        poller = clients.network.virtual_networks.begin_create_or_update("keep", "slow", vnet)
        assert clients.network.virtual_networks.get("keep", "slow").provisioning_state == "Updating"
    finally:
        first.stop()
    stopped_at = time.monotonic()

    second = start(folder, env=env)
    try:
        conn = second.connection
        assert conn.client_secret == first.connection.client_secret
        assert conn.ca_bundle == first.connection.ca_bundle
        assert conn.port == first.connection.port  # the last port is reused when free
        clients = AzureClients(sandbox_profile(conn))
        assert clients.resource.resource_groups.check_existence("keep") is True
        time.sleep(max(0.0, 1.6 - (time.monotonic() - stopped_at)))
        # the operation finished while no sandbox ran; the old poller picks up its result
        assert poller.result().provisioning_state == "Succeeded"
        assert (
            clients.network.virtual_networks.get("keep", "slow").provisioning_state == "Succeeded"
        )
        endpoint = clients.storage.storage_accounts.get_properties(
            "keep", "keepstore"
        ).primary_endpoints.blob
        assert endpoint == conn.blob_endpoint("keepstore")
        blob = clients.blob_service(endpoint, credential).get_blob_client("kept", "a.txt")
        assert blob.download_blob().readall() == b"still here"
    finally:
        second.stop()
