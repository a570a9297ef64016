"""Sandbox fixtures: one real sandbox process for the session (time scale 0.001), the
cloud profile and SDK clients for it, its admin client, and unique resource names.

    sandbox_process  SandboxProcess (session): `batchimage sandbox serve` as a subprocess
    sandbox          Connection (session) of that sandbox
    cloud            CloudProfile (session) built from the connection
    clients          AzureClients (session): real SDK clients (mgmt, blob, batch)
    admin            SandboxAdmin; clears fault rules after the test
    stack_hub        CloudProfile: for this test the sandbox models a cloud that still
                     serves unmanaged disks (as Azure Stack Hub does), and this profile says so
    unique           callable: unique("vnet") -> "vnet-<test>-<n>" (names never collide)
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from batchimage.sandbox.runtime import SandboxProcess, start

TEST_TIME_SCALE = "0.0002"  # a simulated minute in 12 ms


@pytest.fixture(scope="session")
def sandbox_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox")


@pytest.fixture(scope="session")
def sandbox_process(sandbox_folder: Path) -> Iterator[SandboxProcess]:
    """A real `batchimage sandbox serve` child process for the whole session."""
    proc = start(sandbox_folder, env={"BATCHIMAGE_SANDBOX_TIME_SCALE": TEST_TIME_SCALE})
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def sandbox(sandbox_process: SandboxProcess) -> Connection:
    return sandbox_process.connection


@pytest.fixture(scope="session")
def cloud(sandbox: Connection) -> CloudProfile:
    return sandbox_profile(sandbox)


@pytest.fixture(scope="session")
def clients(cloud: CloudProfile) -> AzureClients:
    return AzureClients(cloud)


@pytest.fixture
def admin(sandbox: Connection) -> Iterator[SandboxAdmin]:
    client = SandboxAdmin(sandbox)
    yield client
    client.clear_faults()


@pytest.fixture
def stack_hub(admin: SandboxAdmin, cloud: CloudProfile) -> Iterator[CloudProfile]:
    """The sandbox as a cloud that still serves unmanaged disks (its `cloud` setting is
    azure_stack_hub for this test; public Azure again afterwards)."""
    admin.configure(cloud="azure_stack_hub")
    try:
        yield dataclasses.replace(cloud, unmanaged_disks=True)
    finally:
        admin.configure(cloud="public")


_counter = itertools.count(1)


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Names unique across the session: prefix + short test name + counter (lowercase)."""
    stem = re.sub(r"[^a-z0-9]", "", request.node.name.lower().removeprefix("test"))[:10]

    def make(prefix: str) -> str:
        return f"{prefix}{stem}{next(_counter)}"

    return make
