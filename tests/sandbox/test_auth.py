"""Authentication: tokens from the sandbox's token endpoint through azure-identity; every
ARM and Batch call without a valid bearer token (or with shared key) gets 401."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from batchimage.azure import cloud
from batchimage.azure.clients import AzureClients, make_credential
from batchimage.sandbox.connection import Connection


class FixedToken:
    """A credential handing out a token the sandbox never issued."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("eyJhbGciOiJIUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJl", 2**31)


def test_token_through_azure_identity(sandbox: Connection) -> None:
    cred = make_credential(cloud.sandbox(sandbox))
    assert isinstance(cred, ClientSecretCredential)
    token = cred.get_token(sandbox.arm_scope)
    assert token.token.count(".") == 2 and token.expires_on > 0


def test_wrong_secret_is_refused(sandbox: Connection) -> None:
    cred = make_credential(replace(cloud.sandbox(sandbox), client_secret="not-the-secret"))
    with pytest.raises(ClientAuthenticationError) as err:
        cred.get_token(sandbox.arm_scope)
    assert "AADSTS7000215" in str(err.value)


def test_bad_token_is_refused(clients: AzureClients, sandbox: Connection) -> None:
    bad = AzureClients(clients.profile, credential=FixedToken())
    with pytest.raises(ClientAuthenticationError) as err:
        bad.resource.resource_groups.get(sandbox.resource_group)
    assert err.value.status_code == 401
    assert err.value.error is not None and err.value.error.code == "InvalidAuthenticationToken"


def test_missing_token_and_shared_key_are_refused(sandbox: Connection) -> None:
    url = (
        f"{sandbox.arm_endpoint}/subscriptions/{sandbox.subscription_id}/resourcegroups"
        "?api-version=2025-04-01"
    )
    none = requests.get(url, verify=sandbox.ca_bundle, timeout=10)
    assert none.status_code == 401
    assert none.json()["error"]["code"] == "AuthenticationFailed"
    assert none.headers["x-ms-request-id"]
    assert "Bearer" in none.headers["WWW-Authenticate"]
    batch = f"https://{sandbox.batch_endpoint(sandbox.batch_account)}/pools?api-version=2025-06-01"
    shared = requests.get(
        batch,
        headers={"Authorization": "SharedKey sandboxbatch:c2ln"},
        verify=sandbox.ca_bundle,
        timeout=10,
    )
    assert shared.status_code == 401
    assert shared.json()["code"] == "AuthenticationFailed"
