"""Microsoft.Storage through the real StorageManagementClient, and blobs through the
reported endpoint (Azurite) with the listed key."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.storage.models import (
    Sku,
    StorageAccountCheckNameAvailabilityParameters,
    StorageAccountCreateParameters,
    StorageAccountRegenerateKeyParameters,
    StorageAccountUpdateParameters,
)
from azure.storage.blob import BlobServiceClient

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.connection import Connection


def _create(
    clients: AzureClients,
    group: str,
    name: str,
    kind: str = "StorageV2",
    sku: str = "Standard_LRS",
    location: str = "eastus",
) -> object:
    params = StorageAccountCreateParameters(sku=Sku(name=sku), kind=kind, location=location)
    return clients.storage.storage_accounts.begin_create(group, name, params).result()


def test_seeded_account_serves_blobs(clients: AzureClients, sandbox: Connection) -> None:
    account = clients.storage.storage_accounts.get_properties(
        sandbox.resource_group, sandbox.storage_account
    )
    assert account.kind == "StorageV2" and account.sku.name == "Standard_LRS"
    assert account.location == sandbox.location
    blob_url = account.primary_endpoints.blob
    assert blob_url == f"{sandbox.blob_endpoint_root}/{sandbox.storage_account}/"
    key = (
        clients.storage.storage_accounts.list_keys(sandbox.resource_group, sandbox.storage_account)
        .keys_property[0]
        .value
    )
    service = BlobServiceClient(
        blob_url,
        credential={"account_name": account.name, "account_key": key},
        connection_verify=sandbox.ca_bundle,
    )
    container = service.get_container_client("roundtrip")
    if not container.exists():
        container.create_container()
    container.upload_blob("hello.txt", b"hello sandbox", overwrite=True)
    assert container.download_blob("hello.txt").readall() == b"hello sandbox"


def test_account_lifecycle_and_keys(
    clients: AzureClients, sandbox: Connection, unique: Callable[[str], str]
) -> None:
    group = unique("rgst")
    clients.resource.resource_groups.create_or_update(group, {"location": "eastus"})
    name = unique("st")
    accounts = clients.storage.storage_accounts
    created = _create(
        clients, group, name, kind="Storage", sku="Standard_GRS", location="westeurope"
    )
    assert created.provisioning_state == "Succeeded"  # type: ignore[attr-defined]
    assert created.kind == "Storage" and created.secondary_location == "northeurope"  # type: ignore[attr-defined]
    assert name in [a.name for a in accounts.list_by_resource_group(group)]
    assert name in [a.name for a in accounts.list()]
    expanded = accounts.get_properties(group, name, expand="geoReplicationStats")
    assert expanded.geo_replication_stats.status == "Live"
    assert accounts.get_properties(group, name).geo_replication_stats is None
    updated = accounts.update(group, name, StorageAccountUpdateParameters(tags={"a": "1"}))
    assert updated.tags == {"a": "1"}
    old = accounts.list_keys(group, name).keys_property[0].value
    new = (
        accounts.regenerate_key(group, name, StorageAccountRegenerateKeyParameters(key_name="key1"))
        .keys_property[0]
        .value
    )
    assert new != old
    blob = BlobServiceClient(
        accounts.get_properties(group, name).primary_endpoints.blob,
        credential={"account_name": name, "account_key": new},
        connection_verify=sandbox.ca_bundle,
    )
    blob.create_container("fresh")
    assert [c.name for c in blob.list_containers()] == ["fresh"]
    accounts.delete(group, name)
    with pytest.raises(ResourceNotFoundError) as gone:
        accounts.get_properties(group, name)
    assert gone.value.error is not None and gone.value.error.code == "ResourceNotFound"


def test_names_are_checked_and_global(
    clients: AzureClients, sandbox: Connection, unique: Callable[[str], str]
) -> None:
    accounts = clients.storage.storage_accounts
    check = accounts.check_name_availability
    taken = check(StorageAccountCheckNameAvailabilityParameters(name=sandbox.storage_account))
    assert taken.name_available is False and taken.reason == "AlreadyExists"
    bad = check(StorageAccountCheckNameAvailabilityParameters(name="Bad_Name"))
    assert bad.name_available is False and bad.reason == "AccountNameInvalid"
    with pytest.raises(HttpResponseError) as invalid:
        _create(clients, sandbox.resource_group, "Bad_Name")
    assert invalid.value.status_code == 400
    assert invalid.value.error is not None and invalid.value.error.code == "AccountNameInvalid"
    group = unique("rgst")
    clients.resource.resource_groups.create_or_update(group, {"location": "eastus"})
    with pytest.raises(ResourceExistsError) as dup:
        _create(clients, group, sandbox.storage_account)
    assert dup.value.error is not None and dup.value.error.code == "StorageAccountAlreadyExists"


@pytest.mark.parametrize(
    ("kind", "sku", "named"),
    [("BlobStore", "Standard_LRS", "kind"), ("StorageV2", "Standard_XYZ", "sku")],
)
def test_a_kind_or_sku_storage_does_not_take(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    kind: str,
    sku: str,
    named: str,
) -> None:
    """Storage answers 400 InvalidValuesForRequestParameters naming the field (as in
    Azure/azure-cli#27899), not a code of the sandbox's own."""
    with pytest.raises(HttpResponseError) as bad:
        _create(clients, sandbox.resource_group, unique("st"), kind=kind, sku=sku)
    assert bad.value.status_code == 400
    assert bad.value.error is not None
    assert bad.value.error.code == "InvalidValuesForRequestParameters"
    assert bad.value.error.message.startswith(
        f"Values for request parameters are invalid: {named}."
    )
