"""Destroy removes exactly what the pipeline created, pools first: every pool generation it
made (retired ones are already gone), then the image; a pool someone else made - even one
the spec adopted - is kept, and the image version such a live pool uses is not deleted."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import models as bm

from batchimage.core.errors import BatchImageError
from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness


def test_destroy_removes_exactly_what_was_created(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml")
    pool_id = load_spec(spec).pools[0].id
    pools.apply(spec)

    def bigger(data: dict[str, Any]) -> None:
        data["pools"][0]["vm_size"] = "Standard_D4s_v5"

    pools.edit(spec, bigger)
    pools.apply(spec)  # blue/green: a second generation, the first retired
    active = f"{pool_id}-v1-0-0"
    assert pools.pool_ids(pool_id) == [active]
    # A pool of another pipeline whose id shares the prefix is not ours.
    stranger = f"{pool_id}-other"
    version_id = pools.outputs(spec, "capture.version")["version_id"]
    pools.batch.create_pool(
        bm.BatchPoolCreateOptions(
            id=stranger,
            vm_size="Standard_D2s_v5",
            virtual_machine_configuration=bm.VirtualMachineConfiguration(
                image_reference=bm.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu-24_04-lts", sku="server"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
            target_dedicated_nodes=0,
        )
    )
    record = pools.state(spec).steps[f"pool.{pool_id}"]
    made = sorted(ref.id.rsplit("/", 1)[-1] for ref in record.created)
    assert made == sorted([pool_id, active])  # both generations, as state recorded them

    result = pools.destroy(spec)
    deleted = [c.key for c in result.changes]
    assert deleted.index(f"pool.{pool_id}") < deleted.index("capture.version")  # pools first
    assert pools.pool_ids(pool_id) == [stranger]
    assert pools.resource(version_id) is None
    gallery = load_spec(spec).image.capture.gallery.gallery
    assert gallery not in {g.name for g in pools.clients.compute.galleries.list()}


def test_an_adopted_pool_and_the_image_it_uses_are_kept(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml")
    pool_id = load_spec(spec).pools[0].id
    pools.apply(spec)
    version_id = pools.outputs(spec, "capture.version")["version_id"]
    # Someone else made a pool on the same image, in the spec's shape; the spec adopts it.
    theirs = f"{pool_id}-theirs"
    mine = pools.batch.get_pool(pool_id)
    pools.batch.create_pool(
        bm.BatchPoolCreateOptions(
            id=theirs,
            vm_size=mine.vm_size,
            virtual_machine_configuration=mine.virtual_machine_configuration,
            target_dedicated_nodes=1,
            start_task=mine.start_task,
        )
    )

    def adopt(data: dict[str, Any]) -> None:
        second = dict(data["pools"][0])
        second.update(id=theirs, dedicated_nodes=1)
        data["pools"].append(second)

    pools.edit(spec, adopt)
    change = pools.change(pools.plan(spec), f"pool.{theirs}")
    assert change.action == "update" and "metadata changed" in change.reason
    pools.apply(spec)
    assert pools.batch.get_pool(theirs).creation_time is not None
    assert not pools.state(spec).steps[f"pool.{theirs}"].created  # adopted, not created

    with pytest.raises(BatchImageError) as failed:
        pools.destroy(spec)
    assert "capture.version" in str(failed.value) and theirs in str(failed.value)
    assert pools.pool_ids(pool_id) == [theirs]  # ours deleted, theirs kept
    assert pools.resource(version_id) is not None  # its image is still there
