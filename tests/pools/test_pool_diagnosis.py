"""When a pool does not come up, apply fails with what happened and what to do: resize
errors by code (quota: which quota and the numbers; allocation failure: another size or
region), failed start tasks with the tail of their stdout/stderr, unusable nodes with
their errors as Batch reports them and, for silent ones, what batchimage finds about the
image. Through the engine and the real SDKs, in the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from azure.batch import models as bm

from batchimage.azure.batch_pools import BatchPools, find_account
from batchimage.azure.clients import AzureClients
from batchimage.azure.pool_agent import ImageBase
from batchimage.azure.pool_causes import BuiltImage
from batchimage.azure.pool_health import explain_resize_error
from batchimage.core.errors import BatchImageError
from batchimage.sandbox.connection import Connection
from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness
from tests.sandbox.batch_support import new_account, pool_options, wait_steady

SHARED = "pools-ubuntu"


def setting(**values: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["pools"][0].update(values)

    return edit


def failure(pools: PoolHarness, spec: Any) -> str:
    with pytest.raises(BatchImageError) as failed:
        pools.apply(spec)
    return str(failed.value)


def test_subscription_quota_names_the_quota_and_the_numbers(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    regional_quota: Callable[..., None],
) -> None:
    """A user-subscription pool short of the subscription's regional quota (in the Batch
    account's region): the relayed Compute quota error, and where to ask for more."""
    name = unique("usd")
    client = new_account(clients, sandbox, name, mode="UserSubscription", location="westeurope")
    regional_quota("westeurope", cores=2)
    client.create_pool(pool_options("capped", target_dedicated_nodes=2))
    pool = wait_steady(client, "capped")
    (error,) = pool.resize_errors
    pools = BatchPools(clients, find_account(clients, sandbox.resource_group, name))
    text = explain_resize_error(SimpleNamespace(clients=clients), pools, pool, error)  # type: ignore[arg-type]
    assert "resize error AllocationFailed" in text
    assert "Total Regional Cores" in text and "Current Limit: 2" in text
    assert "request a quota increase" in text and "region westeurope" in text


def test_allocation_failure_suggests_another_size_or_region(
    pools: PoolHarness, batch_rules: Callable[..., None]
) -> None:
    spec = pools.spec("quickstart.yaml", name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    batch_rules(
        allocation_failures=[
            {"pool": f"^{pool_id}$", "nodes": "dedicated", "reason": "No capacity for size."}
        ]
    )
    message = failure(pools, spec)
    assert "resize error AllocationFailed" in message and "No capacity for size." in message
    assert "try another vm_size, another region" in message


def test_start_task_failure_shows_the_log_tail(
    pools: PoolHarness, batch_rules: Callable[..., None]
) -> None:
    lines = "".join(f"step {n}\n" for n in range(1, 31))
    batch_rules(
        start_task_rules=[
            {
                "match": "install-deps",
                "exit_code": 7,
                "stdout": lines,
                "stderr": "E: Unable to locate package foo\n",
            }
        ]
    )
    task = {"command_line": "/bin/sh -c 'install-deps'", "max_task_retry_count": 1}
    spec = pools.spec("quickstart.yaml", setting(start_task=task), name=SHARED)
    message = failure(pools, spec)
    assert "2 node(s) failed their start task" in message
    assert "start task exit code 7 (FailureExitCode" in message and "after 1 retry" in message
    assert "E: Unable to locate package foo" in message
    assert "| step 30" in message and "| step 11" in message
    assert "| step 10\n" not in message  # only the last 20 lines
    assert "fix the start task" in message
    # Plan says the pool failed and that apply will retry.
    pool_id = load_spec(spec).pools[0].id
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "update" and "failed" in change.reason


def test_unusable_nodes_without_errors_name_what_batchimage_finds(pools: PoolHarness) -> None:
    """Batch reports no node error for an image whose guest was not deprovisioned (the node
    is unusable and silent): the diagnosis says so and names the spec's own generalize
    command, which batchimage reads itself, as the cause."""

    def skip_deprovision(data: dict[str, Any]) -> None:
        data["image"]["generalize"] = {"command": "echo not deprovisioned"}

    spec = pools.spec("quickstart.yaml", skip_deprovision)
    message = failure(pools, spec)
    assert "2 node(s) are unusable" in message
    assert "no node errors (Batch cannot communicate with the node's VM" in message
    assert "generalized with the spec's own command ('echo not deprovisioned')" in message
    assert "remove image.generalize.command" in message
    assert "node agent SKU" not in message  # the agent matches the image: not a cause


def test_allocation_failure_explained_from_the_image_and_size(
    pools: PoolHarness, clients: AzureClients
) -> None:
    """AllocationFailed relaying Compute's refusal (a Gen1-only size for a Gen2 image): the
    explanation comes from the VM size's Hyper-V generations and the image definition, and a
    pool whose image version is gone is told so."""
    spec = pools.spec("quickstart.yaml", name=SHARED)
    pools.apply(spec)
    version = pools.outputs(spec, "capture.version")["version_id"]
    pool_id = f"{load_spec(spec).pools[0].id}-gen1"
    vmc = bm.VirtualMachineConfiguration(
        image_reference=bm.BatchVmImageReference(virtual_machine_image_id=version),
        node_agent_sku_id="batch.node.ubuntu 24.04",
    )
    pools.batch.create_pool(
        pool_options(
            pool_id,
            vm_size="Standard_A1_v2",
            virtual_machine_configuration=vmc,
            target_dedicated_nodes=1,
        )
    )
    pool = wait_steady(pools.batch, pool_id)
    (error,) = pool.resize_errors
    account = find_account(clients, "sandbox-rg", "sandboxbatch")
    batch_pools = BatchPools(clients, account)
    ctx = SimpleNamespace(clients=clients)
    base = ImageBase("linux", "Canonical", "ubuntu-24_04-lts", "server")
    image = BuiltImage(version, base, "waagent -deprovision+user -force")
    text = explain_resize_error(ctx, batch_pools, pool, error, image)  # type: ignore[arg-type]
    assert "resize error AllocationFailed" in text
    assert "BadRequest: The selected VM size 'Standard_A1_v2' cannot boot" in text
    assert "standard_a1_v2 boots hyper-v generation v1 only, and the image is v2" in text.lower()
    assert "try another vm_size, another region" not in text
    gone = BuiltImage(version.replace("/versions/", "/versions/9"), base, None)
    text = explain_resize_error(ctx, batch_pools, pool, error, gone)  # type: ignore[arg-type]
    assert "no longer exists: run apply again" in text
    pools.batch.begin_delete_pool(pool_id, polling_interval=0).result()


def test_node_agent_mismatch_fails_before_any_pool(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml", setting(node_agent_sku="batch.node.el 9"), name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    with pytest.raises(BatchImageError) as failed:
        pools.apply(spec)
    assert "batch.node.el 9" in str(failed.value)
    assert pools.pool_ids(pool_id) == []


def test_verify_reports_a_pool_on_another_image(pools: PoolHarness) -> None:
    """A pool someone made at the spec's id on a Marketplace image is replaced, not adopted."""
    spec = pools.spec("quickstart.yaml", setting(rollout="blue_green"), name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    pools.batch.create_pool(pool_options(pool_id, target_dedicated_nodes=0))
    change = pools.change(pools.plan(spec), f"pool.{pool_id}")
    assert change.action == "replace" and "image" in change.reason
    pools.apply(spec)
    ids = pools.pool_ids(pool_id)
    assert ids == sorted([pool_id, f"{pool_id}-v1-0-0"])  # someone else's pool is kept
    kept = pools.outputs(spec, f"pool.{pool_id}.retire")
    assert kept["active_pool_id"] == f"{pool_id}-v1-0-0" and kept["kept"] == [pool_id]
    image = bm.BatchVmImageReference  # the kept pool still runs its Marketplace image
    live = pools.batch.get_pool(pool_id).virtual_machine_configuration.image_reference
    assert isinstance(live, image) and live.offer == "ubuntu-24_04-lts"
