"""Account keys reach Azurite and the tool the moment the ARM call that made them returns,
and a process that talks to two sandboxes (the test suite does) never signs one sandbox's
blob requests with the other's key."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.storage.models import Sku, StorageAccountCreateParameters
from azure.storage.blob import BlobServiceClient

from batchimage.azure import blobs
from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox.config import SandboxConfig
from batchimage.sandbox.connection import Connection
from batchimage.sandbox.server import SandboxServer


@pytest.fixture(scope="module")
def second_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connection]:
    """Another sandbox with Azurite in this process: same subscription, group and seeded
    storage account id as the session's, other keys."""
    server = SandboxServer(
        tmp_path_factory.mktemp("second"), config=SandboxConfig(time_scale=0.001)
    )
    try:
        yield server.start_in_thread()
    finally:
        server.stop()


def _probe(clients: AzureClients, conn: Connection) -> bool:
    """A SharedKey-signed HEAD of a blob of the seeded account, as the cleanup step does."""
    account = blobs.require_account(clients, conn.storage_account, conn.resource_group)
    return blobs.blob_exists(clients, blobs.blob_id(account, "probe", "reference-data.txt"))


def _reusing(freed: int, profile: CloudProfile) -> AzureClients | None:
    """A new clients object that CPython placed where the freed one with id `freed` was."""
    held = []
    for _ in range(50_000):
        clients = AzureClients(profile)
        if id(clients) == freed:
            return clients
        held.append(clients)
    return None


def test_new_clients_never_sign_with_another_sandboxs_cached_key(
    sandbox: Connection, second_sandbox: Connection
) -> None:
    """The tool's key cache outlives no clients object: a new one that gets a dead one's id
    (CPython reuses memory) must not sign with the dead one's key of another sandbox."""
    for _ in range(20):
        first = AzureClients(sandbox_profile(sandbox))
        assert _probe(first, sandbox) is False  # fetches and caches the key
        freed = id(first)
        del first
        gc.collect()
        second = _reusing(freed, sandbox_profile(second_sandbox))
        if second is not None:
            assert _probe(second, second_sandbox) is False
            return
    pytest.fail("no clients object got a freed id in 20 tries; the test proved nothing")


def _create(clients: AzureClients, group: str, name: str) -> str:
    accounts = clients.storage.storage_accounts
    params = StorageAccountCreateParameters(
        sku=Sku(name="Standard_LRS"), kind="StorageV2", location="eastus"
    )
    accounts.begin_create(group, name, params).result()
    return str(accounts.list_keys(group, name).keys_property[0].value)


def _service(conn: Connection, name: str, key: str) -> BlobServiceClient:
    return BlobServiceClient(
        f"{conn.blob_endpoint_root}/{name}/",
        credential={"account_name": name, "account_key": key},
        connection_verify=conn.ca_bundle,
        retry_total=0,
    )


def test_account_changes_reach_azurite_before_the_arm_call_returns(
    clients: AzureClients, sandbox: Connection, unique: Callable[[str], str]
) -> None:
    """Create, delete and re-create an account of the same name (new keys and no data, as in
    Azure) while another thread reads a blob of the seeded account with SharedKey and no
    retries: every key works at once, the old one stops working, no read fails or stalls."""
    group = sandbox.resource_group
    seeded_key = clients.storage.storage_accounts.list_keys(
        group, sandbox.storage_account
    ).keys_property[0]
    seeded = _service(sandbox, sandbox.storage_account, str(seeded_key.value))
    container = seeded.get_container_client(unique("churn"))
    container.create_container()
    blob = container.get_blob_client("reference-data.txt")
    blob.upload_blob(b"reference\n")

    stop = threading.Event()
    reads: list[tuple[float, str | None]] = []

    def read() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                assert blob.exists()
                reads.append((time.monotonic() - started, None))
            except Exception as exc:
                reads.append((time.monotonic() - started, f"{type(exc).__name__}: {exc}"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    name = unique("churn")
    keys = []
    try:
        for round_ in range(3):
            key = _create(clients, group, name)
            keys.append(key)
            fresh = _service(sandbox, name, key).create_container(f"round{round_}")
            fresh.upload_blob("a.txt", b"new account")
            clients.storage.storage_accounts.delete(group, name)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert len(set(keys)) == len(keys)  # a re-created account has new keys
    key = _create(clients, group, name)
    assert not list(_service(sandbox, name, key).list_containers())  # the old data is gone
    with pytest.raises(ClientAuthenticationError):
        _service(sandbox, name, keys[0]).create_container("old")
    clients.storage.storage_accounts.delete(group, name)
    failures = [error for _, error in reads if error]
    assert reads and not failures, failures[:3]
    assert max(seconds for seconds, _ in reads) < 5.0  # restarts stalled reads ~20 s
