"""Blob storage for the image steps: find a storage account, reach its blobs, make a short
read SAS, and name blobs as `ResourceRef`s.

    account = find_account(clients, "sandboxstore", "sandbox-rg")   # StorageAccount facts
    service = blob_service(clients, account)     # account key, or Entra ID if keys are off
    url = read_sas_url(clients, account, "c", "b.vhd", minutes=60)  # registered as secret
    blob_id(account, "c", "b.vhd")   # "<account id>/blobServices/default/containers/c/blobs/b.vhd"

The blob endpoint always comes from the account (`primaryEndpoints.blob`), never from a
naming pattern, so the same code serves every cloud. A SAS is made with a user delegation
key (Entra ID) when the account refuses shared keys, else with the account key; either way
the SAS value is registered as a secret so no log or state shows it.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError as SdkAzureError

from batchimage.azure.arm import text
from batchimage.azure.errors import SDK_RETRY, azure_call, is_not_found, translate
from batchimage.core.errors import PermanentAzureError
from batchimage.core.redact import register_secret

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobServiceClient

    from batchimage.azure.clients import AzureClients

_BLOB_PART = "/blobServices/default/containers/"


@dataclass(frozen=True)
class StorageAccount:
    """What the image steps need to know about a storage account."""

    id: str
    name: str
    group: str
    location: str
    kind: str
    sku: str
    blob_endpoint: str
    shared_key: bool
    hns: bool

    def blob_url(self, container: str, blob: str) -> str:
        """The URL of a blob in this account (no SAS)."""
        return f"{self.blob_endpoint.rstrip('/')}/{container}/{blob}"


def account_facts(raw: Any) -> StorageAccount:
    """A StorageAccount from the SDK's StorageAccount model."""
    group = raw.id.split("/resourceGroups/")[1].split("/")[0]
    endpoints = raw.primary_endpoints
    return StorageAccount(
        id=raw.id,
        name=raw.name,
        group=group,
        location=(raw.location or "").replace(" ", "").lower(),
        kind=text(raw.kind or ""),
        sku=text(getattr(raw.sku, "name", "") or ""),
        blob_endpoint=(getattr(endpoints, "blob", None) or "") if endpoints else "",
        shared_key=raw.allow_shared_key_access is not False,
        hns=bool(raw.is_hns_enabled),
    )


def find_account(clients: AzureClients, name: str, group: str | None) -> StorageAccount | None:
    """The storage account `name` (in `group` when given, else anywhere in the subscription)."""
    storage = clients.storage
    if group:
        try:
            with azure_call(f"read storage account {name}"):
                return account_facts(storage.storage_accounts.get_properties(group, name))
        except PermanentAzureError as err:
            if not is_not_found(err):
                raise
    with azure_call("list storage accounts"):
        for raw in storage.storage_accounts.list():
            if raw.name == name:
                return account_facts(raw)
    return None


def account_for_url(clients: AzureClients, url: str) -> StorageAccount | None:
    """The storage account whose blob endpoint serves `url` (None when none does)."""
    with azure_call("list storage accounts"):
        for raw in clients.storage.storage_accounts.list():
            facts = account_facts(raw)
            if facts.blob_endpoint and url.startswith(facts.blob_endpoint.rstrip("/") + "/"):
                return facts
    return None


def split_blob_url(account: StorageAccount, url: str) -> tuple[str, str]:
    """(container, blob name) of a blob URL of `account`."""
    rest = url.split(account.blob_endpoint.rstrip("/") + "/", 1)[1].split("?", 1)[0]
    container, blob = rest.split("/", 1)
    return container, blob


def require_account(clients: AzureClients, name: str, group: str | None) -> StorageAccount:
    """Like `find_account`, but a missing account is an error that says where we looked."""
    found = find_account(clients, name, group)
    if found is None:
        where = f"resource group {group} or " if group else ""
        raise PermanentAzureError(
            f"storage account {name} was not found in {where}the subscription; create it "
            "(general-purpose v2, same region) or fix the name in the spec",
            code="StorageAccountNotFound",
            status=404,
        )
    return found


# account id -> key, per clients object and dying with it: keyed by id(clients), a new
# object that reuses a dead one's id got the dead one's key (of another sandbox, whose
# seeded account has the same id, or of an account since re-created with new keys)
_keys: weakref.WeakKeyDictionary[AzureClients, dict[str, str]] = weakref.WeakKeyDictionary()
_keys_lock = threading.Lock()


def _account_key(clients: AzureClients, account: StorageAccount) -> str:
    with _keys_lock:
        cached = _keys.get(clients, {}).get(account.id)
    if cached is not None:
        return cached
    with azure_call(f"list keys of storage account {account.name}"):
        result = clients.storage.storage_accounts.list_keys(account.group, account.name)
    keys = result.keys_property or []
    if not keys:
        raise PermanentAzureError(f"storage account {account.name} listed no keys", code="NoKeys")
    key = text(keys[0].value)
    register_secret(key)
    with _keys_lock:
        _keys.setdefault(clients, {})[account.id] = key
    return key


def blob_service(clients: AzureClients, account: StorageAccount) -> BlobServiceClient:
    """A blob client for `account`: account key when allowed, else the Entra ID credential.
    An account Azure gave no blob endpoint (a FileStorage account) is refused, by name."""
    from azure.storage.blob import BlobServiceClient

    if not account.blob_endpoint:
        raise PermanentAzureError(
            f"storage account {account.name} ({account.kind or 'unknown kind'}, {account.id}) "
            "reported no blob endpoint, so batchimage cannot keep blobs in it: name a "
            "general-purpose v2 (StorageV2) or BlockBlobStorage account",
            code="NoBlobEndpoint",
        )
    credential: Any = clients.credential
    if account.shared_key:
        credential = {"account_name": account.name, "account_key": _account_key(clients, account)}
    return BlobServiceClient(
        account.blob_endpoint,
        credential=credential,
        connection_verify=clients.profile.verify,
        **SDK_RETRY,
    )


def blob_client(
    clients: AzureClients, account: StorageAccount, container: str, blob: str
) -> BlobClient:
    """A client for one blob of `account`."""
    return blob_service(clients, account).get_blob_client(container, blob)


def sas_blob_client(clients: AzureClients, url: str, sas: str) -> BlobClient:
    """A client for the blob at `url`, authorized by the SAS token `sas` (no leading '?')."""
    from azure.storage.blob import BlobClient

    return BlobClient.from_blob_url(f"{url}?{sas}", connection_verify=clients.profile.verify)


def read_sas_url(
    clients: AzureClients, account: StorageAccount, container: str, blob: str, *, minutes: int
) -> str:
    """A read-only SAS URL for one blob, valid `minutes` from now (registered as a secret)."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    start = datetime.now(UTC) - timedelta(minutes=5)
    expiry = datetime.now(UTC) + timedelta(minutes=minutes)
    permission = BlobSasPermissions(read=True)
    with azure_call(f"make a read SAS for {container}/{blob}"):
        if account.shared_key:
            sas = generate_blob_sas(
                account.name,
                container,
                blob,
                account_key=_account_key(clients, account),
                permission=permission,
                expiry=expiry,
                start=start,
                protocol="https",
            )
        else:
            service = blob_service(clients, account)
            delegation = service.get_user_delegation_key(start, expiry)
            sas = generate_blob_sas(
                account.name,
                container,
                blob,
                user_delegation_key=delegation,
                permission=permission,
                expiry=expiry,
                start=start,
                protocol="https",
            )
    register_secret(sas)
    url = f"{account.blob_url(container, blob)}?{sas}"
    register_secret(url)
    return url


def ensure_container(container: Any) -> None:
    """Create the container unless it exists; one another run created between the check
    and the create (409 ContainerAlreadyExists) is there, as wanted."""
    from azure.core.exceptions import ResourceExistsError

    if not container.exists():
        with contextlib.suppress(ResourceExistsError):
            container.create_container()


def blob_id(account: StorageAccount, container: str, blob: str) -> str:
    """The id a blob gets in state: its account's resource id + container + blob name."""
    return f"{account.id}{_BLOB_PART}{container}/blobs/{blob}"


def split_blob_id(ref_id: str) -> tuple[str, str, str]:
    """(account id, container, blob) of an id made by `blob_id`."""
    account_id, rest = ref_id.split(_BLOB_PART, 1)
    container, blob = rest.split("/blobs/", 1)
    return account_id, container, blob


def _client_for_id(clients: AzureClients, ref_id: str) -> BlobClient | None:
    account_id, container, blob = split_blob_id(ref_id)
    parts = account_id.split("/")
    account = find_account(clients, parts[-1], parts[4])
    if account is None:
        return None
    return blob_client(clients, account, container, blob)


def blob_exists(clients: AzureClients, ref_id: str) -> bool:
    """Whether the blob a `blob_id` names exists."""
    client = _client_for_id(clients, ref_id)
    if client is None:
        return False
    with azure_call(f"read blob {ref_id.rsplit('/', 1)[-1]}"):
        return bool(client.exists())


def delete_blob(clients: AzureClients, ref_id: str) -> bool:
    """Delete the blob a `blob_id` names (with its snapshots); False if it was gone."""
    client = _client_for_id(clients, ref_id)
    if client is None:
        return False
    try:
        client.delete_blob(delete_snapshots="include")
    except SdkAzureError as exc:
        if is_not_found(exc) or "NotFound" in str(getattr(exc, "error_code", "") or ""):
            return False
        raise translate(exc, f"delete blob {ref_id.rsplit('/', 1)[-1]}") from exc
    return True
