"""Key Vault data plane wire format: GetSecret (latest or a given version) as a
SecretBundle, SecretNotFound, and the api-version Key Vault requires."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.apierrors import ApiError, missing_api_version
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.keyvault import models

# The versions azure-keyvault-secrets 4.12 can send (its `ApiVersion`).
API_VERSIONS = (
    "2026-04-01",
    "2025-07-01",
    "7.6",
    "7.5",
    "7.4",
    "7.3",
    "7.2",
    "7.1",
    "7.0",
    "2016-10-01",
)
# Soft delete is on for every vault, kept 90 days unless set otherwise.
RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90


def id_root(call: Call) -> str:
    """The vault part of its objects' ids, as Azure writes them: `https://<vault>.vault.
    azure.net`. (Clients reach a sandbox vault at `<sandbox>/keyvault/<vault>`, but the
    SDK parses an id only as `<host>/secrets/<name>[/<version>]`: a path prefix fails it.)"""
    found = models.vault(call.world, call.params["vault"])
    name = found["name"] if found else call.params["vault"].lower()
    return f"https://{name}.vault.azure.net"


def check_api_version(call: Call) -> None:
    """400 when `api-version` is missing or not one Key Vault serves."""
    version = call.api_version
    if not version:
        raise missing_api_version()
    if version not in API_VERSIONS:
        raise ApiError(
            400,
            "UnsupportedApiVersionValue",
            f"Unsupported api-version '{version}'. The supported api-versions are "
            f"'{', '.join(API_VERSIONS)}'.",
        )


def secret_not_found(name: str) -> ApiError:
    """Key Vault's 404 for a secret (`name`) or a version (`name/version`) it does not hold."""
    return ApiError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {name} was not found in this key vault. If you recently "
        "deleted this secret you may be able to recover it using the correct recovery "
        "command. For help resolving this issue, please see "
        "https://go.microsoft.com/fwlink/?linkid=2125182",
    )


def bundle(root: str, name: str, item: dict[str, Any]) -> dict[str, Any]:
    """A SecretBundle: value, id `<root>/secrets/<name>/<version>`, attributes."""
    return {
        "value": item["value"],
        "id": f"{root}/secrets/{name}/{item['version']}",
        "attributes": {
            "enabled": True,
            "created": item["created"],
            "updated": item["created"],
            "recoveryLevel": RECOVERY_LEVEL,
            "recoverableDays": RECOVERABLE_DAYS,
        },
    }


def get_secret(call: Call) -> Reply:
    """GetSecret: the latest version, or the one named in the path."""
    check_api_version(call)
    name = call.params["name"]
    version = call.params.get("version", "")
    found = models.secret_version(call.world, call.params["vault"], name, version)
    if found is None:
        raise secret_not_found(f"{name}/{version}" if version else name)
    stored_name, item = found
    return Reply(200, bundle(id_root(call), stored_name, item))
