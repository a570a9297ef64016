"""Fixtures for the image pipeline tests: the sandbox (one process for these tests, at
time scale 0.001), real SDK clients, the admin client, and `pipeline`: a harness that
writes example specs with unique names and runs the engine in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchimage.azure.cloud import CloudProfile
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.pipeline.harness import Harness
from tests.sandbox.conftest import (  # noqa: F401  (fixtures used by these tests)
    admin,
    clients,
    cloud,
    sandbox,
    sandbox_folder,
    sandbox_process,
    unique,
)


@pytest.fixture
def pipeline(
    tmp_path: Path,
    cloud: CloudProfile,  # noqa: F811
    admin: SandboxAdmin,  # noqa: F811
    sandbox: Connection,  # noqa: F811
) -> Iterator[Harness]:
    harness = Harness(tmp_path, cloud, admin, sandbox)
    yield harness
    admin.configure(compute={"script_failures": [], "vm_extensions": []})
