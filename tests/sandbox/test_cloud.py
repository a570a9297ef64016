"""Cloud profiles and the client factory: the sandbox profile from a connection, and a
custom-ARM-endpoint profile read from the cloud's /metadata/endpoints (here: the sandbox's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchimage.azure import cloud
from batchimage.azure.clients import AzureClients, make_credential
from batchimage.core.errors import UsageError
from batchimage.sandbox.connection import Connection
from batchimage.sandbox.runtime import ensure_running
from tests.sandbox.conftest import TEST_TIME_SCALE


def test_named_profiles() -> None:
    assert cloud.resolve("public").arm_endpoint == "https://management.azure.com"
    assert cloud.resolve("AzureUSGovernment").authority_host == "https://login.microsoftonline.us"
    assert cloud.resolve("china").arm_scope == "https://management.chinacloudapi.cn/.default"
    with pytest.raises(UsageError):
        cloud.resolve("mars")
    assert cloud.resolve("public").script_note is None  # Azure runs scripts: nothing to say


def test_a_running_sandbox_is_reused_without_a_word(
    sandbox_folder: Path, sandbox: Connection
) -> None:
    said: list[str] = []
    assert ensure_running(sandbox_folder, say=said.append).pid == sandbox.pid
    assert said == []  # "starting the sandbox…" only when it starts one (test_terminal.py)


def test_sandbox_profile(sandbox: Connection) -> None:
    profile = cloud.sandbox(sandbox)
    assert profile.script_note and "does not run scripts" in profile.script_note
    assert profile.arm_endpoint == sandbox.arm_endpoint
    assert profile.verify == sandbox.ca_bundle
    assert profile.disable_instance_discovery is True
    assert AzureClients(profile).resource.resource_groups.check_existence(sandbox.resource_group)


def test_waits_between_polls_run_on_the_sandbox_clock(sandbox: Connection) -> None:
    """The tool picks its waits in Azure's seconds; the sandbox profile scales them by the
    time scale the sandbox started with (never under 5 ms), the SDK pollers' 10 s too."""
    profile = cloud.sandbox(sandbox)
    scale = float(TEST_TIME_SCALE)
    assert profile.time_scale == sandbox.time_scale == scale
    assert cloud.scaled(profile, 600) == pytest.approx(600 * scale)
    assert cloud.scaled(profile, 1) == cloud.MIN_POLL_S  # 0.2 ms would spin
    assert cloud.scaled(cloud.PUBLIC, 30) == 30  # Azure's own clock
    sdk = AzureClients(profile).compute._config.polling_interval
    assert sdk == max(cloud.MIN_POLL_S, cloud.SDK_POLL_S * scale)


def test_custom_profile_from_metadata(sandbox: Connection) -> None:
    profile = cloud.from_metadata(sandbox.arm_endpoint, ca_bundle=sandbox.ca_bundle)
    assert profile.name == "custom"
    assert profile.arm_scope == f"{sandbox.arm_endpoint}/.default"
    assert profile.authority_host == sandbox.authority_host
    credential = make_credential(cloud.sandbox(sandbox))  # the custom profile has none
    clients = AzureClients(profile, sandbox.subscription_id, credential=credential)
    assert clients.storage.storage_accounts.get_properties(
        sandbox.resource_group, sandbox.storage_account
    ).kind
