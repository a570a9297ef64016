"""Compute's way into Azurite: resolve a blob URL to a sandbox storage account, write
and read page blobs with the account key, make SAS URLs, and fetch a URL the way a
guest would (through its SAS, so a missing or expired blob fails like it does on Azure).

Azurite serves path-style URLs: `<blob root>/<account>/<container>/<blob>`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from batchimage.sandbox.context import World

EXPORT_ACCOUNT = "mdimpexp"  # Azurite account holding disk export (grant access) blobs
PAGE = 512


@dataclass(frozen=True)
class BlobRef:
    """A blob in a sandbox (Azurite) account."""

    account: str
    container: str
    name: str

    def url(self, world: World) -> str:
        return f"{world.blob_endpoint(self.account)}{self.container}/{quote(self.name)}"


class BlobFetchError(Exception):
    """A URL could not be read: `status` is the HTTP status (0: not reachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _ca(world: World) -> str | bool:
    ca = world.store.path.parent / "tls" / "ca.pem"
    return str(ca) if ca.exists() else True


def _client_options(world: World) -> dict[str, Any]:
    return {
        "connection_verify": _ca(world),
        "retry_total": 2,
        "connection_timeout": 10,
        "read_timeout": 60,
    }


def account_key(world: World, account: str) -> str | None:
    """Key1 of a storage account Azurite serves (None when it serves no such account)."""
    keys = world.store.table("blob_accounts").get(account)
    return str(keys).split(":", 1)[0] if keys else None


def publish_export_account(world: World) -> None:
    """Let Azurite serve the disk-export account (idempotent)."""
    table = world.store.table("blob_accounts")
    if EXPORT_ACCOUNT not in table:
        import base64
        import secrets

        key = base64.b64encode(secrets.token_bytes(64)).decode()
        table[EXPORT_ACCOUNT] = f"{key}:{key}"
        world.store.touch()


def parse(world: World, url: str) -> BlobRef | None:
    """The sandbox blob a URL names (query ignored), or None when it is not one of ours."""
    root = urlsplit(world.blob_root)
    parts = urlsplit(url)
    if (parts.scheme, parts.netloc) != (root.scheme, root.netloc):
        return None
    segments = unquote(parts.path).lstrip("/").split("/", 2)
    if len(segments) < 3 or not all(segments):
        return None
    account, container, name = segments
    if account_key(world, account) is None:
        return None
    return BlobRef(account, container, name)


def _service(world: World, account: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    credential = {"account_name": account, "account_key": account_key(world, account) or ""}
    return BlobServiceClient(
        world.blob_endpoint(account).rstrip("/"), credential=credential, **_client_options(world)
    )


def blob_client(world: World, ref: BlobRef) -> Any:
    return _service(world, ref.account).get_blob_client(ref.container, ref.name)


def exists(world: World, ref: BlobRef) -> bool:
    return bool(blob_client(world, ref).exists())


def size(world: World, ref: BlobRef) -> int:
    return int(blob_client(world, ref).get_blob_properties().size)


def write_page_blob(
    world: World, ref: BlobRef, size_bytes: int, pages: list[tuple[int, bytes]]
) -> None:
    """Create (or replace) page blob `ref` of `size_bytes` holding `pages` (offset, data);
    the container is created when missing. Offsets and lengths are multiples of 512."""
    from azure.core.exceptions import ResourceExistsError

    container = _service(world, ref.account).get_container_client(ref.container)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    client = container.get_blob_client(ref.name)
    client.create_page_blob(size=size_bytes)
    for offset, data in pages:
        client.upload_page(data, offset=offset, length=len(data))


def read_range(world: World, ref: BlobRef, offset: int, length: int) -> bytes:
    data: bytes = blob_client(world, ref).download_blob(offset=offset, length=length).readall()
    return data


def delete(world: World, ref: BlobRef) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with contextlib.suppress(ResourceNotFoundError):
        blob_client(world, ref).delete_blob()


def sas_url(world: World, ref: BlobRef, seconds: int, *, write: bool = False) -> str:
    """A SAS URL for `ref` valid `seconds` from now (read, or read+write)."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    key = account_key(world, ref.account)
    permission = BlobSasPermissions(read=True, write=write, create=write)
    token = generate_blob_sas(
        ref.account,
        ref.container,
        ref.name,
        account_key=key,
        permission=permission,
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds),
    )
    return f"{ref.url(world)}?{token}"


def new_export_ref() -> BlobRef:
    """A fresh export blob name, shaped like Azure's (`<random container>/abcd`)."""
    return BlobRef(EXPORT_ACCOUNT, uuid.uuid4().hex[:12], "abcd")


def fetch(world: World, url: str, limit: int = 64 * 1024 * 1024) -> bytes:
    """Read `url` as an anonymous client would (SAS in the query). Raises BlobFetchError
    with the HTTP status (404 missing, 403 bad or expired SAS, 0 unreachable)."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError
    from azure.storage.blob import BlobClient

    if parse(world, url) is None:
        host = urlsplit(url).hostname or url
        raise BlobFetchError(0, f"Could not resolve host: {host}")
    client = BlobClient.from_blob_url(url, **_client_options(world))
    try:
        data: bytes = client.download_blob(offset=0, length=limit).readall()
    except HttpResponseError as exc:
        raise BlobFetchError(int(exc.status_code or 0), str(exc.reason or exc.message)) from exc
    except ServiceRequestError as exc:
        raise BlobFetchError(0, str(exc)) from exc
    return data


def put_text(world: World, url: str, text: str) -> str | None:
    """Write `text` to an append blob at SAS `url` (run command output); the error, or None."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError
    from azure.storage.blob import BlobClient

    if parse(world, url) is None:
        return f"The blob URI {url.split('?', 1)[0]} is not reachable."
    client = BlobClient.from_blob_url(url, **_client_options(world))
    try:
        client.create_append_blob()
        if text:
            client.append_block(text.encode())
    except (HttpResponseError, ServiceRequestError) as exc:
        return f"Failed to write to {url.split('?', 1)[0]}: {exc}"
    return None
