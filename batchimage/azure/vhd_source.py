"""The content digest of a VHD base already in blob storage (`image.base.vhd_url`): what
tells that its content changed, as a new Marketplace version does for a Marketplace base.

The digest is the sparse XXH3-128 of `batchimage.azure.vhd.digest` (docs/vhd.md), written
`xxh3:<hex>`. A blob batchimage uploaded carries it in its metadata; for any other blob it
is computed by reading the blob's data ranges, once per content: a blob whose ETag is the
one recorded with a digest keeps that digest (any write to a blob changes its ETag)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchimage.azure.blobs import account_for_url, blob_service, split_blob_url
from batchimage.azure.errors import azure_call
from batchimage.core.errors import PermanentAzureError
from batchimage.core.ownership import Marks

PREFIX = "xxh3:"


@dataclass(frozen=True)
class VhdIdentity:
    """A VHD blob's content digest and the ETag it was read at."""

    digest: str
    etag: str


def vhd_blob(clients: Any, url: str, sas: str | None, account_id: str | None) -> Any:
    """A client for the VHD blob at `url`: with the spec's SAS token when it gives one, else
    with the storage account's key (or the Entra ID credential)."""
    from azure.storage.blob import BlobClient

    if sas:
        return BlobClient.from_blob_url(
            f"{url}?{sas.lstrip('?')}", connection_verify=clients.profile.verify
        )
    account = account_for_url(clients, url)
    if account is None:
        where = f" (storage_account_id {account_id})" if account_id else ""
        raise PermanentAzureError(
            f"cannot find the storage account of {url}{where}", code="StorageAccountNotFound"
        )
    container, name = split_blob_url(account, url)
    return blob_service(clients, account).get_blob_client(container, name)


def vhd_identity(
    blob: Any, recorded: VhdIdentity | None, say: Callable[[str], None]
) -> VhdIdentity:
    """The blob's content digest: from its batchimage upload metadata, else the `recorded`
    one when the ETag is unchanged, else computed from its data (said first: it reads every
    data range of the disk)."""
    from batchimage.azure.vhd.digest import blob_digest

    with azure_call(f"read the properties of {blob.url.split('?')[0]}"):
        props = blob.get_blob_properties()
    etag = str(props.etag or "")
    meta = dict(props.metadata or {})
    if meta.get(Marks.Blob.UPLOAD_STATUS) == "complete" and meta.get(Marks.Blob.DIGEST):
        return VhdIdentity(PREFIX + meta[Marks.Blob.DIGEST], etag)
    if recorded is not None and recorded.etag == etag and recorded.digest:
        return recorded
    say(f"reading {blob.blob_name} to compute its content digest (its ETag is new)")
    with azure_call(f"read {blob.blob_name}"):
        digest = blob_digest(blob, int(props.size))
    return VhdIdentity(PREFIX + digest, etag)
