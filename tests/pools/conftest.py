"""Fixtures for the pool tests: the image pipeline tests' sandbox (time scale 0.001), SDK
clients and admin client; Batch rules and simulated durations for one test; and `pools`:
the pipeline harness running every stage (image and pools) in-process (`classic_pools`: the
same on the sandbox modelling a cloud that still serves unmanaged disks)."""

from __future__ import annotations

import pytest

from tests.pipeline.conftest import (  # noqa: F401  (fixtures used by these tests)
    admin,
    classic_pipeline,
    clients,
    cloud,
    pipeline,
    sandbox,
    sandbox_folder,
    sandbox_process,
    stack_hub,
    unique,
)
from tests.pipeline.harness import Harness
from tests.pools.harness import PoolHarness
from tests.sandbox.batch_support import (  # noqa: F401
    batch_rules,
    durations,
    regional_quota,
)


@pytest.fixture
def pools(pipeline: Harness) -> PoolHarness:  # noqa: F811
    return PoolHarness(pipeline.tmp / "pools", pipeline.cloud, pipeline.admin, pipeline.conn)


@pytest.fixture
def classic_pools(classic_pipeline: Harness) -> PoolHarness:  # noqa: F811
    h = classic_pipeline
    return PoolHarness(h.tmp / "pools", h.cloud, h.admin, h.conn)
