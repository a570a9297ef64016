"""Key Vault secrets through the real SecretClient: latest and given versions,
SecretNotFound, Key Vault's 401 challenge and audience check, an unknown vault's host
not resolving (the connection dropped), and reset forgetting secrets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from batchimage.sandbox.runtime import start

Unique = Callable[[str], str]


def vault_url(conn: Connection, vault: str) -> str:
    """The URL a SecretClient takes for sandbox vault `vault`."""
    return f"{conn.arm_endpoint}/keyvault/{vault}"


def secret_client(
    conn: Connection, cloud: CloudProfile, vault: str, **kwargs: object
) -> SecretClient:
    """A SecretClient as the tool builds one for the sandbox (loopback: no resource check)."""
    return SecretClient(
        vault_url(conn, vault),
        AzureClients(cloud).credential,
        connection_verify=cloud.verify,
        verify_challenge_resource=False,
        **kwargs,
    )


def one_secret_url(conn: Connection, admin: SandboxAdmin, vault: str) -> str:
    """GetSecret's URL (api-version 7.6) of secret `s` (value "v"), set in a new vault."""
    admin.set_secret(vault, "s", "v")
    return f"{vault_url(conn, vault)}/secrets/s?api-version=7.6"


def test_latest_and_given_versions(
    sandbox: Connection, cloud: CloudProfile, admin: SandboxAdmin, unique: Unique
) -> None:
    vault = unique("kv")
    first = admin.set_secret(vault, "db-password", "one")
    second = admin.set_secret(vault, "db-password", "two")
    assert first != second and len(first) == 32
    client = secret_client(sandbox, cloud, vault)
    latest = client.get_secret("db-password")
    assert latest.value == "two"
    assert latest.properties.version == second
    # ids as Azure writes them: the SDK parses only `<host>/secrets/<name>/<version>`
    assert latest.id == f"https://{vault}.vault.azure.net/secrets/db-password/{second}"
    assert latest.properties.vault_url == f"https://{vault}.vault.azure.net"
    assert latest.name == "db-password"
    assert latest.properties.enabled is True
    assert latest.properties.created_on is not None
    assert latest.properties.recovery_level == "Recoverable+Purgeable"
    older = client.get_secret("db-password", first)
    assert (older.value, older.properties.version) == ("one", first)
    assert client.get_secret("DB-Password").value == "two"  # names compare without case


def test_missing_secret_and_version_are_secret_not_found(
    sandbox: Connection, cloud: CloudProfile, admin: SandboxAdmin, unique: Unique
) -> None:
    vault = unique("kv")
    admin.set_secret(vault, "present", "x")
    client = secret_client(sandbox, cloud, vault)
    with pytest.raises(ResourceNotFoundError) as err:
        client.get_secret("absent")
    assert err.value.error is not None and err.value.error.code == "SecretNotFound"
    assert "A secret with (name/id) absent was not found in this key vault." in str(err.value)
    with pytest.raises(ResourceNotFoundError) as err:
        client.get_secret("present", "0" * 32)
    assert err.value.error is not None and err.value.error.code == "SecretNotFound"
    assert f"(name/id) present/{'0' * 32} was not found" in str(err.value)
    admin.delete_secret(vault, "present")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("present")


def test_request_without_token_gets_the_challenge(
    sandbox: Connection, cloud: CloudProfile, admin: SandboxAdmin, unique: Unique
) -> None:
    url = one_secret_url(sandbox, admin, unique("kv"))
    raw = requests.get(url, verify=cloud.verify, timeout=30)
    assert raw.status_code == 401
    assert raw.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{sandbox.arm_endpoint}/{sandbox.tenant_id}", '
        'resource="https://vault.azure.net"'
    )
    assert raw.json() == {
        "error": {
            "code": "Unauthorized",
            "message": "AKV10000: Request is missing a Bearer or PoP token.",
        }
    }


def test_token_for_another_audience_is_refused(
    sandbox: Connection, cloud: CloudProfile, admin: SandboxAdmin, unique: Unique
) -> None:
    url = one_secret_url(sandbox, admin, unique("kv"))
    credential = AzureClients(cloud).credential
    arm = credential.get_token(sandbox.arm_scope).token
    raw = requests.get(url, headers={"Authorization": f"Bearer {arm}"}, verify=cloud.verify)
    assert raw.status_code == 401
    assert raw.json()["error"]["code"] == "Unauthorized"
    assert raw.json()["error"]["message"] == (
        f"AKV10022: Invalid audience. Expected https://vault.azure.net, found: "
        f"{sandbox.arm_endpoint}."
    )
    assert "WWW-Authenticate" in raw.headers
    vault_token = credential.get_token("https://vault.azure.net/.default").token
    ok = requests.get(url, headers={"Authorization": f"Bearer {vault_token}"}, verify=cloud.verify)
    assert ok.status_code == 200 and ok.json()["value"] == "v"
    missing = requests.get(
        url.split("?")[0], headers={"Authorization": f"Bearer {vault_token}"}, verify=cloud.verify
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"


def test_unknown_vault_does_not_resolve(
    sandbox: Connection, cloud: CloudProfile, admin: SandboxAdmin, unique: Unique
) -> None:
    """In Azure `<vault>.vault.azure.net` does not resolve; the sandbox drops the connection
    before answering anything, a challenge included."""
    client = secret_client(sandbox, cloud, unique("nokv"), retry_total=0)
    with pytest.raises(AzureError) as err:
        client.get_secret("anything")
    assert isinstance(err.value, (ServiceRequestError, ServiceResponseError))
    assert not isinstance(err.value, HttpResponseError)


def test_reset_forgets_secrets(tmp_path: Path) -> None:
    proc = start(tmp_path / "sb", env={"BATCHIMAGE_SANDBOX_TIME_SCALE": "0.001"})
    try:
        conn = proc.connection
        cloud = sandbox_profile(conn)
        admin = SandboxAdmin(conn)
        admin.set_secret("resetkv", "s", "kept-out-of-logs-1234")
        assert secret_client(conn, cloud, "resetkv").get_secret("s").value.startswith("kept")
        assert "kept-out-of-logs" not in str(admin.requests())  # values are never logged
        admin.reset()
        with pytest.raises(AzureError) as err:
            secret_client(conn, cloud, "resetkv", retry_total=0).get_secret("s")
        assert not isinstance(err.value, HttpResponseError)
    finally:
        proc.stop()


def test_reading_a_secret_needs_the_data_action_on_the_vault(
    sandbox: Connection, cloud: CloudProfile, admin: SandboxAdmin, unique: Unique
) -> None:
    """Owner of the subscription reads no secret: a vault with the RBAC model answers 403
    Forbidden until the caller holds Key Vault Secrets User (or another role with
    `.../secrets/getSecret/action`) on it."""
    vault = unique("kv")
    admin.set_secret(vault, "locked", "v", grant=False)
    client = secret_client(sandbox, cloud, vault)
    with pytest.raises(HttpResponseError) as refused:
        client.get_secret("locked")
    assert refused.value.status_code == 403
    assert refused.value.error is not None and refused.value.error.code == "Forbidden"
    message = refused.value.error.message or ""
    assert message.startswith("Caller is not authorized to perform action on resource.")
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'" in message
    scope = (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{sandbox.resource_group}"
        f"/providers/Microsoft.KeyVault/vaults/{vault}"
    )
    admin.assign_role(sandbox.client_id, "Key Vault Secrets User", scope)
    assert client.get_secret("locked").value == "v"
