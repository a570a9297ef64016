"""Microsoft.Batch management through the real BatchManagementClient; the account's
endpoint works with azure.batch.BatchClient (path prefix kept)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.batch.models import AutoStorageBaseProperties, BatchAccountCreateParameters

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection


def test_seeded_account(clients: AzureClients, sandbox: Connection) -> None:
    account = clients.batch_management.batch_account.get(
        sandbox.resource_group, sandbox.batch_account
    )
    assert account.pool_allocation_mode == "UserSubscription"
    assert account.location == "eastus"
    assert account.account_endpoint == sandbox.batch_endpoint(sandbox.batch_account)
    assert account.auto_storage.storage_account_id.endswith(
        f"/storageAccounts/{sandbox.storage_account}"
    )


def test_account_lifecycle(
    clients: AzureClients, sandbox: Connection, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    group = unique("rgba")
    clients.resource.resource_groups.create_or_update(group, {"location": "westeurope"})
    name = unique("ba")
    storage_id = (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{sandbox.resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{sandbox.storage_account}"
    )
    params = BatchAccountCreateParameters(
        location="westeurope",
        auto_storage=AutoStorageBaseProperties(storage_account_id=storage_id),
    )
    accounts = clients.batch_management.batch_account
    before = admin.counters()["operations"].get("Operations_GetResult", 0)
    created = accounts.begin_create(group, name, params).result()
    assert admin.counters()["operations"].get("Operations_GetResult", 0) > before  # Location polled
    assert created.provisioning_state == "Succeeded"
    assert created.pool_allocation_mode == "BatchService"
    assert created.dedicated_core_quota and created.dedicated_core_quota > 0
    assert created.location == "westeurope"
    assert name in [a.name for a in accounts.list_by_resource_group(group)]
    assert name in [a.name for a in accounts.list()]
    accounts.begin_delete(group, name).result()
    with pytest.raises(ResourceNotFoundError) as gone:
        accounts.get(group, name)
    assert gone.value.error is not None and gone.value.error.code == "ResourceNotFound"
    with pytest.raises(HttpResponseError) as bad:
        accounts.begin_create(group, "Bad-Name", params).result()
    assert bad.value.status_code == 400
    # no published code for a Batch account name: ARM's generic one (AccountNameInvalid is
    # Storage's)
    assert bad.value.error is not None and bad.value.error.code == "BadRequest"


def test_account_endpoint_reaches_batch_plane(
    clients: AzureClients, sandbox: Connection, admin: SandboxAdmin
) -> None:
    account = clients.batch_management.batch_account.get(
        sandbox.resource_group, sandbox.batch_account
    )
    batch = clients.batch(account.account_endpoint)
    seq = admin.counters()["seq"]
    with contextlib.suppress(HttpResponseError):  # the data plane is another service
        list(batch.list_pools())
    paths = [r["path"] for r in admin.requests(since=seq) if r["plane"] == "batch"]
    assert paths and paths[0] == f"/batch/{sandbox.batch_account}/pools"
