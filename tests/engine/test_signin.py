"""Why no token, in one line: azure-identity's real credential chains, failing as they do
on a machine with nothing set up (environment variables unset, no Azure CLI) and against
the sandbox's token endpoint with a wrong client secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    AzureCliCredential,
    ChainedTokenCredential,
    ClientSecretCredential,
    EnvironmentCredential,
)

from batchimage.azure.signin import clipped, why_no_token
from batchimage.sandbox.connection import Connection

SCOPE = "https://management.azure.com/.default"


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AZURE_* variables and no `az` on the PATH."""
    import os

    for name in [n for n in os.environ if n.startswith("AZURE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", str(tmp_path))


def failure(chain: ChainedTokenCredential) -> str:
    with pytest.raises(ClientAuthenticationError) as caught:
        chain.get_token(SCOPE)
    assert "Attempted credentials:" in str(caught.value)  # the many-line list it replaces
    return why_no_token(caught.value, chain)


def test_nothing_set_up_lists_what_was_tried(bare: None) -> None:
    chain = ChainedTokenCredential(EnvironmentCredential(), AzureCliCredential())
    assert failure(chain) == "no sign-in found (tried environment variables, Azure CLI)"


def test_a_credential_that_fails_for_real_is_named_with_its_words(
    bare: None, sandbox: Connection
) -> None:
    wrong = ClientSecretCredential(
        sandbox.tenant_id,
        sandbox.client_id,
        "not-the-secret",
        authority=sandbox.authority_host,
        disable_instance_discovery=True,
        connection_verify=sandbox.ca_bundle,
    )
    chain = ChainedTokenCredential(EnvironmentCredential(), wrong, AzureCliCredential())
    said = failure(chain)
    assert said.startswith("the service principal could not get a token: ")
    assert "AADSTS7000215: Invalid client secret provided." in said
    assert said.endswith("(tried before it: environment variables)")
    assert "\n" not in said and "not-the-secret" not in said


def test_one_line_cut_at_a_word() -> None:
    text = "Missing required arguments: " + "tenant_id client_id token_file_path " * 20
    cut = clipped(text, 60)
    assert cut.endswith("…") and len(cut) <= 61
    assert cut[:-1].split()[-1] in {"tenant_id", "client_id", "token_file_path", "arguments"}
    assert why_no_token(ClientAuthenticationError("line one\nline two")) == "line one"
