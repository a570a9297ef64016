"""A `pools` fixture for engine tests that drive the CLI on sandbox specs: the pool
harness (unique pipeline, gallery and pool ids per spec) over this folder's sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchimage.azure.cloud import CloudProfile
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.pools.harness import PoolHarness
from tests.sandbox.conftest import admin, clients, cloud  # noqa: F401


@pytest.fixture
def pools(
    tmp_path: Path,
    cloud: CloudProfile,  # noqa: F811
    admin: SandboxAdmin,  # noqa: F811
    sandbox: Connection,
) -> PoolHarness:
    return PoolHarness(tmp_path, cloud, admin, sandbox)
