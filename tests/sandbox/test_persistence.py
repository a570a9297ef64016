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
from tests.engine.procs import command_lines


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
        SandboxAdmin(first.connection).publish_image(
            "Canonical", "ubuntu-24_04-lts", "server", "24.04.202511050"
        )
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
        images = clients.compute.virtual_machine_images
        ubuntu = ("eastus", "Canonical", "ubuntu-24_04-lts", "server")
        assert [v.name for v in images.list(*ubuntu)][-1] == "24.04.202511050"
        SandboxAdmin(conn).reset()  # forgets what was published
        assert [v.name for v in images.list(*ubuntu)][-1] == "24.04.202503180"
    finally:
        second.stop()


def test_sandbox_started_for_a_process_ends_with_it(tmp_path: Path) -> None:
    """ensure_running's sandbox stops (Azurite too) when its caller dies, even by SIGKILL."""
    import os
    import signal
    import subprocess
    import sys

    from batchimage.sandbox.connection import read_connection
    from batchimage.sandbox.runtime import healthy

    folder = tmp_path / "sb"
    code = (
        "import sys, time; from pathlib import Path\n"
        "from batchimage.sandbox.runtime import ensure_running\n"
        f"ensure_running(Path({str(folder)!r})); print('up', flush=True); time.sleep(60)\n"
    )
    caller = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BATCHIMAGE_SANDBOX_TIME_SCALE": "0.001"},
    )
    assert caller.stdout is not None and caller.stdout.readline().strip() == "up"
    conn = read_connection(folder)
    assert conn is not None and healthy(conn)
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and healthy(conn, timeout=0.5):
        time.sleep(0.2)
    assert not healthy(conn, timeout=0.5)
    while time.monotonic() < deadline:
        try:
            os.kill(conn.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the sandbox process outlived its caller")
    azurites = [args for _, args in command_lines().values()]
    assert not [args for args in azurites if str(folder / "azurite") in args]
