"""Key Vault secret references: a secret's value, read with the run's own sign-in.

    value = read_secret(clients, "https://myvault.vault.azure.net/secrets/build-admin")

The vault is reached at the URI's own host (in the sandbox: at the sandbox's Key Vault
endpoint, `CloudProfile.vault_url`). A secret that is missing, or that this identity may
not read, or a vault that cannot be reached, is a PermanentAzureError that says which and
what to do; the value is never part of a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from batchimage.azure.errors import translate
from batchimage.core.errors import PermanentAzureError, TransientAzureError, UsageError

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients

READ_ROLE = "Key Vault Secrets User"  # the built-in role that reads secret values


def split_secret_uri(uri: str) -> tuple[str, str, str | None]:
    """(vault host, secret name, version or None) of a secret URI
    (`https://<vault>.vault.azure.net/secrets/<name>[/<version>]`)."""
    parts = urlsplit(uri)
    path = [p for p in parts.path.split("/") if p]
    if len(path) not in (2, 3) or path[0].lower() != "secrets":
        raise UsageError(
            f"{uri} is not a Key Vault secret URI (https://<vault>.vault.azure.net/secrets/<name>)"
        )
    return parts.hostname or "", path[1], path[2] if len(path) > 2 else None


def read_secret(clients: AzureClients, uri: str) -> str:
    """The value of the secret `uri` names (its latest version unless the URI gives one)."""
    host, name, version = split_secret_uri(uri)
    client = clients.secret_client(uri)
    where = f"secret {name}{f' (version {version})' if version else ''} in Key Vault {host}"
    try:
        with client:
            value = client.get_secret(name, version).value
    except ClientAuthenticationError as exc:  # no token for the vault's tenant or cloud
        raise translate(exc, f"read {where}") from exc
    except ValueError as exc:  # the vault's challenge names another cloud's resource
        if "challenge" not in str(exc).lower():
            raise
        raise PermanentAzureError(
            f"Key Vault {host} answered for another cloud than this run's ({exc}); use a "
            "secret URI of this cloud's vaults",
            operation=f"read {where}",
        ) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:  # after the SDK's retries
        raise PermanentAzureError(
            f"cannot reach Key Vault {host} to read {name}: {exc.message}. Check the vault name "
            "in the secret URI (az keyvault list) and that this machine reaches it (network, "
            "firewall, private endpoint), then run again",
            operation=f"read {where}",
        ) from exc
    except HttpResponseError as exc:
        code = (exc.error.code if exc.error else None) or str(exc.status_code or "")
        if exc.status_code == 429 or (exc.status_code or 0) >= 500:
            raise TransientAzureError(
                f"Key Vault {host} is busy or failing ({code}) reading {name}; run again",
                code=code,
                status=exc.status_code,
                operation=f"read {where}",
            ) from exc
        raise PermanentAzureError(
            _refused(where, exc.status_code),
            code=code,
            status=exc.status_code,
            operation=f"read {where}",
        ) from exc
    if value is None:
        raise PermanentAzureError(f"{where} has no value", operation=f"read {where}")
    return value


def _refused(where: str, status: int | None) -> str:
    """What Key Vault's refusal to read `where` means, and what to do (the error shows the
    code and status beside it)."""
    if status == 404:
        return (
            f"{where} was not found; check the name and version in the secret URI "
            "(az keyvault secret list --vault-name <vault>)"
        )
    if status == 403:
        return (
            f"this identity may not read {where}: grant it the {READ_ROLE} role on the vault "
            "(or a get permission on secrets, for a vault with access policies)"
        )
    if status == 401:
        return (
            f"Key Vault refused this run's sign-in to read {where} (a vault of another tenant "
            "or cloud?)"
        )
    return f"Key Vault refused to read {where}"
