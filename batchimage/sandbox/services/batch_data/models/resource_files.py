"""Resource files of a (start) task, checked the way a node downloading them would find
them: URLs into the sandbox's Azurite are really asked (with their SAS, or with the
account key for `autoStorageContainerName` and identity references); others are trusted.
"""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.context import World
from batchimage.sandbox.services.batch_data.models.accounts import Account

NOT_FOUND = ("BlobNotFound", "One of the specified Azure Blob(s) is not found.")
DENIED = ("BlobAccessDenied", "Access for one of the specified Azure Blob(s) is denied.")


def problem(world: World, account: Account, files: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The failureInfo of the first resource file a node could not download, or None."""
    for item in files:
        found = _check(world, account, item)
        if found is not None:
            code, message = found
            details = [
                {"name": "FilePath", "value": str(item.get("filePath", ""))},
                {"name": "Source", "value": _source(item)},
            ]
            return {"category": "usererror", "code": code, "message": message, "details": details}
    return None


def _source(item: dict[str, Any]) -> str:
    url = str(item.get("httpUrl") or item.get("storageContainerUrl") or "")
    return url.split("?", 1)[0] or str(item.get("autoStorageContainerName", ""))


def _check(world: World, account: Account, item: dict[str, Any]) -> tuple[str, str] | None:
    root = world.blob_root.rstrip("/")
    keyed = bool(item.get("identityReference"))
    if item.get("autoStorageContainerName"):
        storage = _auto_storage(account)
        if storage is None:
            return NOT_FOUND
        url = f"{root}/{storage}/{item['autoStorageContainerName']}"
        return _ask(world, url, container=True, keyed=True, prefix=item.get("blobPrefix", ""))
    url = str(item.get("httpUrl") or item.get("storageContainerUrl") or "")
    if not root or not url.startswith(root + "/"):
        return None  # outside the sandbox: a node would fetch it; the sandbox cannot tell
    container = not item.get("httpUrl")
    return _ask(world, url, container=container, keyed=keyed, prefix=item.get("blobPrefix", ""))


def _auto_storage(account: Account) -> str | None:
    storage_id = (account.properties.get("autoStorage") or {}).get("storageAccountId")
    return str(storage_id).rstrip("/").split("/")[-1] if storage_id else None


def _ask(
    world: World, url: str, *, container: bool, keyed: bool, prefix: str = ""
) -> tuple[str, str] | None:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.storage.blob import BlobClient, ContainerClient

    root = world.blob_root.rstrip("/")
    name = url[len(root) + 1 :].split("/", 1)[0]
    keys = str(world.store.table("blob_accounts").get(name, "")).split(":")[0]
    credential = {"account_name": name, "account_key": keys} if keyed and keys else None
    options: dict[str, Any] = {
        "credential": credential,
        "connection_verify": str(world.store.path.parent / "tls" / "ca.pem"),
        "retry_total": 0,
    }
    try:
        if container:  # a node lists the blobs (with blobPrefix) and downloads them
            client = ContainerClient.from_container_url(url, **options)
            next(iter(client.list_blobs(name_starts_with=prefix or None)), None)
        else:
            BlobClient.from_blob_url(url, **options).get_blob_properties()
    except ResourceNotFoundError:
        return NOT_FOUND
    except HttpResponseError as exc:
        return DENIED if exc.status_code in (401, 403) else NOT_FOUND
    return None
