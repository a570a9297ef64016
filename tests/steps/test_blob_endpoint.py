"""A storage account Azure lists without a blob endpoint (a FileStorage account) is refused
by name before any blob request, not with the SDK's 'Invalid URL: https://'."""

from __future__ import annotations

import pytest

from batchimage.azure.blobs import StorageAccount, blob_service
from batchimage.core.errors import PermanentAzureError

ACCOUNT_ID = (
    "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg"
    "/providers/Microsoft.Storage/storageAccounts/files"
)


def test_an_account_without_a_blob_endpoint_is_named() -> None:
    account = StorageAccount(
        id=ACCOUNT_ID,
        name="files",
        group="rg",
        location="eastus",
        kind="FileStorage",
        sku="Premium_LRS",
        blob_endpoint="",
        shared_key=True,
        hns=False,
    )
    with pytest.raises(PermanentAzureError) as refused:
        blob_service(object(), account)  # type: ignore[arg-type]  # refused before any use
    assert refused.value.code == "NoBlobEndpoint"
    assert "storage account files (FileStorage" in str(refused.value)
