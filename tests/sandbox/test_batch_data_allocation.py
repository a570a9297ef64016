"""Batch pool allocation through the real BatchClient: nodes creating -> starting -> idle,
resize up and down with the SDK's pollers, stop resize, node counts, vCPU quotas
(Batch-service and user-subscription accounts), low-priority / Spot nodes and
configured allocation failures, all reported in `resizeErrors` like Azure."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.exceptions import ResourceExistsError

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.sandbox import batch_support
from tests.sandbox.batch_support import (
    HELD,
    allocation_failed,
    new_account,
    pool_options,
    wait_nodes,
    wait_steady,
)

batch = batch_support.batch  # fixtures
batch_rules = batch_support.batch_rules
regional_quota = batch_support.regional_quota
durations = batch_support.durations


def test_nodes_reach_idle(
    batch: BatchClient,
    unique: Callable[[str], str],
    admin: SandboxAdmin,
    durations: Callable[..., None],
) -> None:
    pool_id = unique("idle")
    durations(**{"node.start": HELD})  # the nodes start once the clock is moved on
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=2))
    assert batch.get_pool(pool_id).allocation_state == bm.AllocationState.RESIZING
    seen = {n.state or "" for n in wait_nodes(batch, pool_id, {"creating", "starting"}, 2)}
    admin.advance(HELD)

    def idle() -> list[bm.BatchNode] | None:
        nodes = list(batch.list_nodes(pool_id))
        seen.update(n.state or "" for n in nodes)
        return nodes if len(nodes) == 2 and all(n.state == "idle" for n in nodes) else None

    nodes = batch_support.wait_for(idle, "idle nodes")
    assert "starting" in seen or "creating" in seen
    pool = batch.get_pool(pool_id)
    assert pool.allocation_state == bm.AllocationState.STEADY and not pool.resize_errors
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (2, 0)
    node = batch.get_node(pool_id, nodes[0].id)
    assert node.id.startswith("tvmps_") and node.is_dedicated is True
    assert node.vm_size == "standard_d2s_v3" and node.ip_address and node.allocation_time
    assert node.virtual_machine_info.image_reference.offer == "ubuntu-24_04-lts"
    assert node.node_agent_info.version and node.scheduling_state == "enabled"
    counts = {c.pool_id: c for c in batch.list_pool_node_counts()}[pool_id]
    assert (counts.dedicated.idle, counts.dedicated.total, counts.low_priority.total) == (2, 2, 0)
    idle_only = list(batch.list_nodes(pool_id, filter="state eq 'idle'", select=["id", "state"]))
    assert len(idle_only) == 2 and idle_only[0].vm_size is None


def test_resize_up_and_down(batch: BatchClient, unique: Callable[[str], str]) -> None:
    pool_id = unique("rsz")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=1))
    with pytest.raises(ResourceExistsError) as busy:
        batch.begin_resize_pool(pool_id, bm.BatchPoolResizeOptions(target_dedicated_nodes=2))
    assert busy.value.error is not None and busy.value.error.code == "PoolBeingResized"
    wait_steady(batch, pool_id)
    grow = bm.BatchPoolResizeOptions(target_dedicated_nodes=3)
    batch.begin_resize_pool(pool_id, grow, polling_interval=0).result()
    pool = batch.get_pool(pool_id)
    assert pool.allocation_state == "steady" and pool.current_dedicated_nodes == 3
    wait_nodes(batch, pool_id, {"idle"}, 3)
    shrink = bm.BatchPoolResizeOptions(target_dedicated_nodes=1)
    poller = batch.begin_resize_pool(pool_id, shrink, polling_interval=0)
    leaving = [n for n in batch.list_nodes(pool_id) if n.state == "leavingpool"]
    poller.result()
    assert len(leaving) == 2 or poller.done()
    pool = batch.get_pool(pool_id)
    assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (1, 1)
    assert len(list(batch.list_nodes(pool_id))) == 1


def test_stop_resize(
    batch: BatchClient, unique: Callable[[str], str], durations: Callable[..., None]
) -> None:
    pool_id = unique("stop")
    batch.create_pool(pool_options(pool_id))
    wait_steady(batch, pool_id)
    durations(**{"pool.allocate": 30000.0})  # 30 s: the resize is still running when stopped
    batch.begin_resize_pool(pool_id, bm.BatchPoolResizeOptions(target_dedicated_nodes=4))
    assert batch.get_pool(pool_id).allocation_state == "resizing"
    batch.begin_stop_pool_resize(pool_id, polling_interval=0).result()
    pool = batch.get_pool(pool_id)
    assert pool.allocation_state == "steady" and pool.current_dedicated_nodes == 0
    assert [e.code for e in pool.resize_errors] == ["ResizeStopped"]
    assert pool.target_dedicated_nodes == 4


def test_batch_service_quotas(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    name = unique("bsq")
    client = new_account(clients, sandbox, name)
    batch_rules(account_quotas={name: {"dedicated": 4, "low_priority": 2}})
    client.create_pool(pool_options("dedicated", target_dedicated_nodes=3))
    pool = wait_steady(client, "dedicated")
    assert pool.current_dedicated_nodes == 2  # 4 vCPUs of D2s_v3 nodes
    (error,) = pool.resize_errors
    assert (error.code, error.message) == (
        "AccountCoreQuotaReached",
        "The specified account has reached core quota",
    )
    client.create_pool(pool_options("spot", target_low_priority_nodes=1))
    (retired,) = wait_steady(client, "spot").resize_errors
    assert retired.code == "AllocationFailed"
    assert "retired" in {v.name: v.value for v in retired.error_values}["Reason"]

    batch_rules(
        low_priority_retired=False,
        account_quotas={
            name: {"dedicated": 1000, "low_priority": 2, "families": {"standardDSv3Family": 100}}
        },
    )
    client.create_pool(pool_options("lowpri", target_low_priority_nodes=2))
    low = wait_steady(client, "lowpri")
    assert low.current_low_priority_nodes == 1 and low.resize_errors[0].code == (
        "AccountLowPriorityCoreQuotaReached"
    )
    family = pool_options("family", vm_size="Standard_D16s_v3", target_dedicated_nodes=7)
    client.create_pool(family)
    big = wait_steady(client, "family")  # standardDSv3Family: 100 vCPUs
    assert big.current_dedicated_nodes == 6
    assert big.resize_errors[0].code == "AccountVMSeriesCoreQuotaReached"


def test_user_subscription_nodes_meet_the_regional_quota_of_the_account_region(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    regional_quota: Callable[..., None],
) -> None:
    """A user-subscription account's nodes are VMs of the subscription in the account's
    region: Spot nodes for low-priority targets, every node in that region's Compute
    usage, and a resize beyond that region's vCPU quota ends with AllocationFailed relaying
    Compute's quota error - however much room the sandbox's own region has."""
    name = unique("usq")
    client = new_account(clients, sandbox, name, mode="UserSubscription", location="japaneast")
    regional_quota("japaneast", cores=4, lowPriorityCores=2)
    client.create_pool(pool_options("spot", target_low_priority_nodes=2))
    spot = wait_steady(client, "spot")
    assert spot.current_low_priority_nodes == 1  # 2 Spot vCPUs: one D2s_v3
    (node,) = wait_nodes(client, "spot", {"idle"}, 1)
    assert node.is_dedicated is False
    (error,) = spot.resize_errors
    values = {v.name: v.value for v in error.error_values}
    assert "exceeding approved LowPriorityCores quota" in values["Provider Error Json"]
    client.create_pool(pool_options("first", target_dedicated_nodes=1))
    wait_nodes(client, "first", {"idle"}, 1)
    usage = {u.name.value: u for u in clients.compute.usage.list("japaneast")}
    assert (usage["cores"].current_value, usage["cores"].limit) == (2, 4)
    assert usage["standardDSv3Family"].current_value == 2
    assert usage["lowPriorityCores"].current_value == 2
    eastus = {u.name.value: u for u in clients.compute.usage.list(sandbox.location)}
    assert eastus["cores"].limit > 4  # the sandbox's own region has room; it does not count

    client.create_pool(pool_options("capped", target_dedicated_nodes=2))
    capped = wait_steady(client, "capped")
    assert capped.current_dedicated_nodes == 1
    (error,) = capped.resize_errors
    assert error.code == "AllocationFailed"
    values = {v.name: v.value for v in error.error_values}
    assert values["Provider Error Json Truncated"] == "False"
    provider = json.loads(values["Provider Error Json"])["error"]
    assert provider["code"] == "OperationNotAllowed"
    assert "exceeding approved Total Regional Cores quota" in provider["message"]
    assert (
        "Location: japaneast, Current Limit: 4, Current Usage: 2, Additional Required: 4"
        in provider["message"]
    )


def test_allocation_failure_rule(
    batch: BatchClient, unique: Callable[[str], str], batch_rules: Callable[..., None]
) -> None:
    pool_id = unique("nocap")
    batch_rules(
        allocation_failures=[{"pool": f"^{pool_id}$", "nodes": "dedicated", "reason": "No room."}]
    )
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=2))
    assert allocation_failed(batch, pool_id) == {"Reason": "No room."}


def test_resize_timeout(
    batch: BatchClient, unique: Callable[[str], str], durations: Callable[..., None]
) -> None:
    durations(**{"pool.allocate": 3600.0})  # allocation would take longer than the timeout
    pool_id = unique("late")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=2))
    pool = wait_steady(batch, pool_id)  # after resizeTimeout (15 simulated minutes)
    assert pool.current_dedicated_nodes == 0
    # the service's spelling (REST example PoolList.json), not the SDK constant's name
    assert [(e.code, e.message) for e in pool.resize_errors] == [
        (
            "AllocationTimedout",
            "Desired number of dedicated nodes could not be allocated as the resize timeout "
            "was reached",
        )
    ]


def test_allocation_goes_on_while_the_sandbox_is_down(tmp_path: Path) -> None:
    """Pools and their timers persist: nodes come up by simulated time, not by requests."""
    from batchimage.azure.cloud import sandbox as sandbox_profile
    from batchimage.sandbox.config import SandboxConfig
    from batchimage.sandbox.server import SandboxServer

    def serve() -> tuple[SandboxServer, BatchClient]:
        server = SandboxServer(tmp_path, config=SandboxConfig(time_scale=0.001), azurite=False)
        conn = server.start_in_thread()
        return server, AzureClients(sandbox_profile(conn)).batch(
            conn.batch_endpoint(conn.batch_account)
        )

    server, client = serve()
    client.create_pool(pool_options("kept", target_dedicated_nodes=2))
    assert client.get_pool("kept").allocation_state == "resizing"
    server.stop()
    time.sleep(1.0)  # 1000 simulated seconds: allocation and node start finish meanwhile
    server, client = serve()
    try:
        nodes = list(client.list_nodes("kept"))  # the first request settles the due timers
        assert [n.state for n in nodes] == ["idle", "idle"]
        assert client.get_pool("kept").allocation_state == "steady"
    finally:
        server.stop()
