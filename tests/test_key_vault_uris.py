"""Where a Key Vault secret URI is read: the vault at its own host in Azure, the sandbox's
Key Vault endpoint for that vault name in the sandbox; and what the URI names."""

from __future__ import annotations

import pytest

from batchimage.azure.cloud import CHINA, PUBLIC, CloudProfile
from batchimage.azure.key_vault import split_secret_uri
from batchimage.core.errors import UsageError

SANDBOX = CloudProfile(
    name="sandbox",
    arm_endpoint="https://127.0.0.1:4443/",
    authority_host="https://127.0.0.1:4443",
    arm_scope="https://127.0.0.1:4443/.default",
)


def test_a_vault_is_reached_at_its_own_host_in_azure() -> None:
    uri = "https://myvault.vault.azure.net/secrets/build-admin"
    assert PUBLIC.vault_url(uri) == "https://myvault.vault.azure.net"
    china = "https://myvault.vault.azure.cn/secrets/build-admin/0a1b2c"
    assert CHINA.vault_url(china) == "https://myvault.vault.azure.cn"


def test_the_sandbox_serves_each_vault_under_its_own_endpoint() -> None:
    uri = "https://myvault.vault.azure.net/secrets/build-admin"
    assert SANDBOX.vault_url(uri) == "https://127.0.0.1:4443/keyvault/myvault"
    # another cloud's host (or a typo) names no sandbox vault, as it resolves to none
    china = "https://myvault.vault.azure.cn/secrets/build-admin"
    assert SANDBOX.vault_url(china) == "https://127.0.0.1:4443/keyvault/myvault.vault.azure.cn"


def test_a_secret_uri_names_the_vault_the_secret_and_maybe_a_version() -> None:
    assert split_secret_uri("https://kv1.vault.azure.net/secrets/pw") == (
        "kv1.vault.azure.net",
        "pw",
        None,
    )
    assert split_secret_uri("https://kv1.vault.azure.net/secrets/pw/4f3a/") == (
        "kv1.vault.azure.net",
        "pw",
        "4f3a",
    )


def test_a_uri_that_names_no_secret_is_refused() -> None:
    with pytest.raises(UsageError, match="is not a Key Vault secret URI"):
        split_secret_uri("https://kv1.vault.azure.net/keys/k")
