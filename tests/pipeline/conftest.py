"""Fixtures for the image pipeline tests: the sandbox (one process for these tests, at
time scale 0.001), real SDK clients, the admin client, and `pipeline`: a harness that
writes example specs with unique names and runs the engine in-process (`classic_pipeline`:
the same against the sandbox modelling a cloud that still serves unmanaged disks)."""

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
    stack_hub,
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


@pytest.fixture
def classic_pipeline(
    tmp_path: Path,
    stack_hub: CloudProfile,  # noqa: F811
    admin: SandboxAdmin,  # noqa: F811
    sandbox: Connection,  # noqa: F811
) -> Harness:
    """The harness for the classic (unmanaged-disk) flow, on a cloud that still has it."""
    return Harness(tmp_path, stack_hub, admin, sandbox)
