"""Every example spec applies end to end in the sandbox - image and pools - through the
engine and the real SDKs: each pool runs on the captured image with the node agent of the
image's OS, smoke tests pass, and a second apply makes zero writes."""

from __future__ import annotations

import pytest

from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness

AGENTS = {
    "two-pools.yaml": "batch.node.el 9",
    "windows-server.yaml": "batch.node.windows amd64",
    "vhd-upload.yaml": "batch.node.ubuntu 24.04",
    "classic-unmanaged.yaml": "batch.node.ubuntu 24.04",
}


@pytest.mark.parametrize("example", sorted(AGENTS))
def test_example_applies_with_its_pools(request: pytest.FixtureRequest, example: str) -> None:
    # the classic flow needs a cloud that still serves unmanaged disks
    fixture = "classic_pools" if example == "classic-unmanaged.yaml" else "pools"
    pools: PoolHarness = request.getfixturevalue(fixture)
    spec = pools.spec(example)
    result = pools.apply(spec)
    version = pools.outputs(spec, "capture.version")["version_id"]
    loaded = load_spec(spec)
    assert loaded.pools
    for pool in loaded.pools:
        assert pools.change(result.changes, f"pool.{pool.id}").action == "created"
        assert pools.outputs(spec, f"pool.{pool.id}.retire")["active_pool_id"] == pool.id
        live = pools.batch.get_pool(pool.id)
        vmc = live.virtual_machine_configuration
        assert vmc.image_reference.virtual_machine_image_id == version
        assert vmc.node_agent_sku_id == AGENTS[example]
        assert live.task_slots_per_node == pool.task_slots_per_node
        if pool.smoke_test is not None:
            assert pools.change(result.changes, f"pool.{pool.id}.smoke").action == "created"
    writes = pools.writes(lambda: pools.apply(spec))
    assert writes == 0, pools.admin.counters()["operations"]
    assert all(c.action in ("no-op", "skip") for c in pools.plan(spec))
