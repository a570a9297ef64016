"""Key Vault secret references through preflight and the build, against the session
sandbox's Key Vault (the real SecretClient): a missing secret, one this identity may not
read and an unknown vault stop preflight, each saying what to do; the value reaches the VM
(a weak one is refused by Azure's own check) and never a message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from batchimage.core.errors import StepFailedError
from tests.pipeline.harness import Harness
from tests.pipeline.test_preflight import failed_preflight


def from_vault(uri: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["image"]["build"]["admin_password"] = {"key_vault": uri}

    return edit


def test_missing_secret_and_unknown_vault_stop_preflight(
    pipeline: Harness, unique: Callable[[str], str]
) -> None:
    vault, locked = unique("kv"), unique("kv")
    pipeline.admin.set_secret(vault, "other", "Unused-Value-1")
    pipeline.admin.set_secret(locked, "key", "Unread-Value-2", grant=False)

    def three(data: dict[str, Any]) -> None:
        from_vault(f"https://{vault}.vault.azure.net/secrets/build-admin")(data)
        data["image"]["customize"][0]["secret_env"] = {
            "TOKEN": {"key_vault": "https://nosuchvault.vault.azure.net/secrets/token"},
            "KEY": {"key_vault": f"https://{locked}.vault.azure.net/secrets/key"},
        }

    message = failed_preflight(pipeline, pipeline.spec("windows-server.yaml", three))
    assert (
        "FAIL secrets: image.build.admin_password: SecretNotFound: secret build-admin in Key "
        f"Vault {vault}.vault.azure.net was not found; check the name and version"
    ) in message
    assert (
        "FAIL secrets: image.customize[0].secret_env.TOKEN: cannot reach Key Vault "
        "nosuchvault.vault.azure.net to read token"
    ) in message
    assert (
        "FAIL secrets: image.customize[0].secret_env.KEY: Forbidden: this identity may not "
        f"read secret key in Key Vault {locked}.vault.azure.net: grant it the Key Vault "
        "Secrets User role on the vault"
    ) in message
    assert "Unread-Value-2" not in message


def test_the_admin_password_comes_from_the_vault(
    pipeline: Harness, unique: Callable[[str], str]
) -> None:
    vault = unique("kv")
    uri = f"https://{vault}.vault.azure.net/secrets/build-admin"
    weak = "weakpassword"  # one character class: Azure refuses it for a VM
    pipeline.admin.set_secret(vault, "build-admin", weak)
    spec = pipeline.spec("windows-server.yaml", from_vault(uri))
    with pytest.raises(StepFailedError) as refused:
        pipeline.apply(spec, target="build.vm")
    assert refused.value.step == "build.vm"
    said = str(refused.value)  # Azure's refusal of the value the vault gave, never the value
    assert "InvalidParameter: The supplied password must be between 8-123" in said
    assert weak not in said

    version = pipeline.admin.set_secret(vault, "build-admin", "Strong-Passw0rd-From-Vault")
    pipeline.apply(spec, target="build.vm")  # the latest version now
    assert pipeline.outputs(spec, "build.vm")["name"]
    pinned = spec.read_text().replace(uri, f"{uri}/{version}")
    spec.write_text(pinned)
    assert pipeline.plan(spec)  # a pinned version reads as well
