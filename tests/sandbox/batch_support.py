"""Helpers for the Batch data-plane tests: a BatchClient for the seeded account, pool
options, waits over simulated time, and Batch rules set through the admin endpoint
(reset after each test)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection

UBUNTU = bm.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server")
UBUNTU_AGENT = "batch.node.ubuntu 24.04"
RULE_KEYS = ("start_task_rules", "task_rules", "allocation_failures")
QUOTA_KEYS = ("core_quotas", "account_quotas")


@pytest.fixture
def batch(clients: AzureClients, sandbox: Connection) -> BatchClient:
    """A BatchClient on the seeded (user-subscription) Batch account."""
    return clients.batch(sandbox.batch_endpoint(sandbox.batch_account))


@pytest.fixture
def batch_rules(admin: SandboxAdmin) -> Iterator[Callable[..., None]]:
    """Set sandbox Batch rules for this test: `batch_rules(start_task_rules=[...])`."""

    def configure(**rules: Any) -> None:
        admin.configure(batch=rules)

    yield configure
    admin.configure(batch={**{k: [] for k in RULE_KEYS}, **{k: {} for k in QUOTA_KEYS}})
    admin.configure(batch={"low_priority_retired": True})


@pytest.fixture
def regional_quota(admin: SandboxAdmin) -> Iterator[Callable[..., None]]:
    """Set a region's Compute vCPU limits for this test: `regional_quota("westus", cores=4)`
    (names as in the usage list: cores, lowPriorityCores, standardDSv5Family, ...)."""
    regions: dict[str, dict[str, int]] = {}

    def configure(region: str, **limits: int) -> None:
        regions[region] = limits
        admin.configure(compute={"quota": {"regions": regions}})

    yield configure
    admin.configure(compute={"quota": {}})


def pool_options(pool_id: str, **changes: Any) -> bm.BatchPoolCreateOptions:
    """An Ubuntu 24.04 pool of Standard_D2s_v3 nodes (fields overridable)."""
    options: dict[str, Any] = {
        "id": pool_id,
        "vm_size": "Standard_D2s_v3",
        "virtual_machine_configuration": bm.VirtualMachineConfiguration(
            image_reference=UBUNTU, node_agent_sku_id=UBUNTU_AGENT
        ),
        "target_dedicated_nodes": 0,
    }
    options.update(changes)
    return bm.BatchPoolCreateOptions(**options)


# Simulated seconds of a duration that ends only when a test moves the sandbox's clock on
# (admin.advance): 200 s of real time at the tests' time scale, far beyond any wait.
HELD = 1e6


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_steady(batch: BatchClient, pool_id: str) -> bm.BatchPool:
    def steady() -> bm.BatchPool | None:
        pool = batch.get_pool(pool_id)
        return pool if pool.allocation_state == bm.AllocationState.STEADY else None

    result: bm.BatchPool = wait_for(steady, f"pool {pool_id} steady")
    return result


def allocation_failed(batch: BatchClient, pool_id: str) -> dict[str, str]:
    """The values of a steady pool's one resize error, AllocationFailed for every dedicated
    node it asked for (no node allocated)."""
    pool = wait_steady(batch, pool_id)
    assert pool.current_dedicated_nodes == 0
    (error,) = pool.resize_errors
    assert (error.code, error.message) == (
        "AllocationFailed",
        "Desired number of dedicated nodes could not be allocated",
    )
    return {str(v.name): str(v.value) for v in error.error_values}


def wait_nodes(
    batch: BatchClient, pool_id: str, states: set[str], count: int
) -> list[bm.BatchNode]:
    """Wait until `count` nodes exist and all are in one of `states`."""

    def settled() -> list[bm.BatchNode] | None:
        nodes = list(batch.list_nodes(pool_id))
        done = len(nodes) == count and all(n.state in states for n in nodes)
        return nodes if done else None

    result: list[bm.BatchNode] = wait_for(settled, f"{count} nodes of {pool_id} in {states}")
    return result


def new_account(
    clients: AzureClients,
    sandbox: Connection,
    name: str,
    mode: str = "BatchService",
    location: str | None = None,
) -> BatchClient:
    """A fresh Batch account (management API) in the seeded group (in the sandbox's
    location unless `location` says otherwise); its data-plane client.

    As on Azure, creating an account grants no data role: the sandbox's principal is given
    Azure Batch Data Contributor on it (as a user would be) so tests can run jobs there."""
    from azure.mgmt.batch.models import BatchAccountCreateParameters

    params = BatchAccountCreateParameters(
        location=location or sandbox.location, pool_allocation_mode=mode
    )
    account = clients.batch_management.batch_account.begin_create(
        sandbox.resource_group, name, params
    ).result()
    SandboxAdmin(sandbox).assign_role(sandbox.client_id, "Azure Batch Data Contributor", account.id)
    return clients.batch(account.account_endpoint)


@pytest.fixture
def durations(admin: SandboxAdmin) -> Iterator[Callable[..., None]]:
    """Change simulated durations for this test: `durations(**{"pool.allocate": 5000})`."""
    saved: dict[str, float] = {}

    def change(**values: float) -> None:
        current = admin.clock()["config"]["durations"]
        for name in values:
            saved.setdefault(name, current[name])
        admin.configure(durations=values)

    yield change
    if saved:
        admin.configure(durations=saved)
