"""The blob state backend's Azure side: the state blob and its lease through the storage SDK.

    blob = blob_in_account(clients, account="st", group="rg", container="c", blob="p.json")
    blob = blob_in_account(..., auth="entra_id")       # the clients' sign-in, not a key
    blob = AzureBlob(container_client, "p.json")       # a container client you have
    store = BlobStateStore(blob, lease_s=30)           # batchimage.state.blob: the protocol

`blob_in_account` finds the storage account through ARM (its blob endpoint, and its first
access key, registered as a secret, unless the spec asks for Entra ID sign-in) and opens
the container with it. Either way the
result is an `AzureBlob`, the `LeasedBlob` (`batchimage.core.leased_blob`) that the
backend's lease protocol runs against. `AzureBlob` owns the blob
clients and the lease, and turns every SDK exception into a `BlobFailure` of the kind the
backend acts on: the storage service's error codes are known here only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobLeaseClient, ContainerClient

from batchimage.azure.errors import SDK_RETRY, azure_call
from batchimage.core.errors import StateError
from batchimage.core.leased_blob import (
    BlobFailure,
    BlobInfo,
    BlobMissing,
    Lease,
    LeaseGone,
    LeaseTaken,
    WriteRefused,
)
from batchimage.core.redact import register_secret

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients

LEASE_TAKEN = {"LeaseAlreadyPresent", "LeaseIsBreakingAndCannotBeAcquired"}
LEASE_GONE = {
    "LeaseIdMismatchWithLeaseOperation",
    "LeaseNotPresentWithLeaseOperation",
    "LeaseIsBrokenAndCannotBeRenewed",
    "LeaseAlreadyBroken",
}
WRITE_REFUSED = {
    "LeaseIdMismatchWithBlobOperation",
    "LeaseLost",
    "LeaseIdMissing",
    "ConditionNotMet",
}


def blob_in_account(
    clients: AzureClients,
    *,
    account: str,
    group: str,
    container: str,
    blob: str,
    auth: str = "key",
) -> AzureBlob:
    """The state blob `container/blob` of storage account `account` (in `group`): its blob
    endpoint comes from ARM, and so does its key (list keys) unless `auth` is `entra_id`
    (then the blob is reached with the clients' own credential); AzureError when ARM
    refuses, StateError when the account has no key."""
    with azure_call(f"read storage account {account} for the state"):
        props = clients.storage.storage_accounts.get_properties(group, account)
    credential: Any = clients.credential
    if auth != "entra_id":
        with azure_call(f"read storage account {account} for the state"):
            keys = clients.storage.storage_accounts.list_keys(group, account).keys_property or []
        if not keys or not keys[0].value:
            raise StateError(f"storage account {account} returned no access key for the state")
        register_secret(keys[0].value)
        credential = {"account_name": account, "account_key": keys[0].value}
    client = ContainerClient(
        props.primary_endpoints.blob,
        container,
        credential=credential,
        connection_verify=clients.profile.verify,
        **SDK_RETRY,
    )
    return AzureBlob(client, blob)


class AzureLease:
    """A lease on the state blob, through the SDK's lease client."""

    def __init__(self, client: BlobLeaseClient) -> None:
        self.client = client

    def renew(self) -> None:
        """Renew the lease (LeaseGone when it is lost)."""
        with _failures():
            self.client.renew()

    def release(self) -> None:
        """Give the lease up."""
        with _failures():
            self.client.release()


class AzureBlob:
    """The state blob `<container>/<blob>` and its `<blob>.bak` (a `LeasedBlob`)."""

    def __init__(self, container: ContainerClient, blob: str) -> None:
        self.container = container
        self.blob = container.get_blob_client(blob)
        self.backup_blob = container.get_blob_client(blob + ".bak")
        self.where: str = self.blob.url
        self.backup_where: str = self.backup_blob.url

    def create(self) -> None:
        """Make the container, and the blob empty, unless they exist."""
        with _failures():
            with contextlib.suppress(ResourceExistsError):
                self.container.create_container()
            with contextlib.suppress(ResourceExistsError):
                self.blob.upload_blob(b"", overwrite=False)

    def acquire(self, seconds: int) -> Lease:
        """A new lease for `seconds` (LeaseTaken when another holds one)."""
        client = BlobLeaseClient(self.blob)
        with _failures():
            client.acquire(lease_duration=seconds)
        return AzureLease(client)

    def break_lease(self) -> None:
        """Break whatever lease is on the blob, at once."""
        with _failures():
            BlobLeaseClient(self.blob).break_lease(lease_break_period=0)

    def info(self) -> BlobInfo:
        """The blob's lease and metadata (BlobMissing when there is no blob)."""
        with _failures():
            props = self.blob.get_blob_properties()
        return BlobInfo(
            leased=props.lease.state in {"leased", "breaking"}, metadata=props.metadata or {}
        )

    def set_metadata(self, metadata: dict[str, str], lease: Lease) -> str | None:
        """Replace the metadata under `lease`; the new ETag."""
        with _failures():
            props = self.blob.set_blob_metadata(metadata, lease=_client(lease))
        return str(props["etag"]) if props.get("etag") else None

    def download(self) -> tuple[bytes, str | None]:
        """The blob's bytes and ETag (BlobMissing when there is no blob)."""
        with _failures():
            downloader = self.blob.download_blob()
            data = downloader.readall()
        return data, downloader.properties.etag

    def upload(
        self, data: bytes, *, lease: Lease | None, etag: str | None, metadata: dict[str, str]
    ) -> str | None:
        """Replace the blob, under `lease` and on `etag` when given; the new ETag."""
        conditions: dict[str, Any] = {}
        if etag:
            conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        with _failures():
            result = self.blob.upload_blob(
                data,
                overwrite=True,
                lease=_client(lease),
                metadata=metadata,
                **conditions,
            )
        return str(result["etag"]) if result.get("etag") else None

    def upload_backup(self, data: bytes) -> None:
        """Replace `<blob>.bak` with `data`."""
        with _failures():
            self.backup_blob.upload_blob(data, overwrite=True)


def _client(lease: Lease | None) -> BlobLeaseClient | None:
    """The SDK's lease client behind a lease this module made."""
    if lease is None:
        return None
    if not isinstance(lease, AzureLease):
        raise TypeError(f"not a lease on an AzureBlob: {lease!r}")
    return lease.client


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """Run SDK calls; an SDK exception leaves as the BlobFailure its error code says."""
    try:
        yield
    except AzureError as exc:
        raise failure(exc) from exc


def failure(exc: AzureError) -> BlobFailure:
    """The BlobFailure for an SDK exception: its kind from the storage error code."""
    code = _code(exc)
    kind: type[BlobFailure] = BlobFailure
    if code in LEASE_TAKEN:
        kind = LeaseTaken
    elif code in LEASE_GONE:
        kind = LeaseGone
    elif code in WRITE_REFUSED:
        kind = WriteRefused
    elif isinstance(exc, ResourceNotFoundError):
        kind = BlobMissing
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    status = getattr(exc, "status_code", None)
    return kind(first, code=code, status=status, kind=type(exc).__name__)


def _code(exc: Exception) -> str | None:
    code = getattr(exc, "error_code", None)
    if code is None and getattr(exc, "error", None) is not None:
        code = exc.error.code  # type: ignore[attr-defined]
    return str(code.value if hasattr(code, "value") else code) if code else None
