"""Batch account quotas, as a person meets them: preflight refuses a spec whose pools do not
fit (which quota, the numbers, what to do) before anything is created; a pool that ends
short (autoscale, or a resize the account cannot hold) fails with the resize error's code,
the quota's size, what other pools hold, what the pool asked for and got, and the next
action; a create refused with PoolQuotaReached names the pools that fill the account.
Real SDK clients against the sandbox, quotas lowered with its `account_quotas` knob."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.mgmt.batch.models import AutoStorageBaseProperties, BatchAccountCreateParameters

from batchimage.azure.batch_pools import BatchPools, find_account
from batchimage.azure.clients import AzureClients
from batchimage.azure.pool_health import explain_resize_error, pool_quota_error
from batchimage.core.errors import BatchImageError, PermanentAzureError, PreflightError
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness
from tests.sandbox.batch_support import pool_options, wait_for, wait_steady

SHARED = "pools-ubuntu"


def batch_service_account(
    clients: AzureClients, sandbox: Connection, name: str
) -> tuple[BatchClient, BatchPools]:
    """A Batch-service account in the seeded group (auto-storage: the seeded account)."""
    storage = (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{sandbox.resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{sandbox.storage_account}"
    )
    params = BatchAccountCreateParameters(
        location=sandbox.location,
        pool_allocation_mode="BatchService",
        auto_storage=AutoStorageBaseProperties(storage_account_id=storage),
    )
    made = clients.batch_management.batch_account.begin_create(
        sandbox.resource_group, name, params
    ).result()
    pools = BatchPools(clients, find_account(clients, sandbox.resource_group, name))
    return clients.batch(made.account_endpoint), pools


def in_account(account: str, **pool: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["pools"][0].update(pool)
        data["pools"][0]["batch_account"]["name"] = account

    return edit


def failure(pools: PoolHarness, spec: Any) -> BatchImageError:
    with pytest.raises(BatchImageError) as failed:
        pools.apply(spec)
    return failed.value


def test_preflight_refuses_pools_beyond_the_family_quota(
    pools: PoolHarness,
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    account = unique("pfq")
    batch_rules(account_quotas={account: {"families": {"standardDSv3Family": 100}}})
    batch, _ = batch_service_account(clients, sandbox, account)
    filler = unique("filler")
    batch.create_pool(pool_options(filler, vm_size="Standard_D4s_v3", target_dedicated_nodes=24))
    wait_steady(batch, filler)  # 96 of the family's 100 vCPUs
    spec = pools.spec(
        "quickstart.yaml", in_account(account, vm_size="Standard_D4s_v3"), name=SHARED
    )
    pool_id = load_spec(spec).pools[0].id
    pools.admin.reset_counters()
    error = failure(pools, spec)
    assert isinstance(error.__cause__, PreflightError)
    assert pools.admin.counters()["writes"] == 0, "preflight creates nothing"
    message = str(error)
    assert (
        f"FAIL batch quota {account}: pool {pool_id} (2 x Standard_D4s_v3, 4 vCPUs each) needs "
        "8 dedicated vCPUs; the account's dedicated core quota for VM family standardDSv3Family "
        f"is 100 vCPUs; 96 in use by other pools ({filler}: 24 x standard_d4s_v3); 8 needed, "
        "4 free." in message
    )
    assert f"request a quota increase for Batch account {account}" in message
    assert f"Batch accounts > {account} > Quotas" in message
    assert f"az batch account show --name {account} --resource-group {sandbox.resource_group}" in (
        message
    )
    assert "at most 1 x Standard_D4s_v3 fit now" in message
    assert "or a VM size of another family" in message


def test_preflight_refuses_more_than_the_whole_quota(
    pools: PoolHarness,
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    account = unique("pfw")
    batch_rules(account_quotas={account: {"dedicated": 6}})
    batch_service_account(clients, sandbox, account)
    spec = pools.spec("quickstart.yaml", in_account(account, dedicated_nodes=4), name=SHARED)
    message = str(failure(pools, spec))
    assert "needs 8 dedicated vCPUs (more than the whole quota); the account's dedicated " in (
        message
    )
    assert "dedicated core quota is 6 vCPUs; none in use; 8 needed, 6 free" in message
    assert "at most 3 x Standard_D2s_v5 fit now" in message


def test_preflight_refuses_one_pool_too_many(
    pools: PoolHarness,
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    account = unique("pfp")
    batch_rules(account_quotas={account: {"pools": 1}})
    batch, _ = batch_service_account(clients, sandbox, account)
    other = unique("other")
    batch.create_pool(pool_options(other))
    spec = pools.spec("quickstart.yaml", in_account(account), name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    message = str(failure(pools, spec))
    assert (
        f"FAIL batch pool quota {account}: the spec creates pool(s) {pool_id}; the account has "
        "1 of its 1 pools (pool quota)." in message
    )
    assert f"az batch pool delete --pool-id <id> --account-name {account}" in message


def test_autoscale_pool_short_of_quota_names_the_quota_and_the_numbers(
    pools: PoolHarness,
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    account = unique("asq")
    batch_rules(account_quotas={account: {"families": {"standardDSv3Family": 8}}})
    batch_service_account(clients, sandbox, account)

    def edit(data: dict[str, Any]) -> None:
        in_account(account, vm_size="Standard_D4s_v3", wait_for="steady")(data)
        del data["pools"][0]["dedicated_nodes"]
        data["pools"][0]["autoscale"] = {"formula": "$TargetDedicatedNodes = 3;"}

    spec = pools.spec("quickstart.yaml", edit, name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    error = failure(pools, spec)
    message = str(error)
    assert (
        "resize error AccountVMSeriesCoreQuotaReached: The specified account has reached VM "
        "series core quota for standardDSv3Family" in message
    )
    assert (
        f"Batch account {account}'s dedicated core quota for VM family standardDSv3Family is 8 "
        "vCPUs; none in use; 12 needed, 8 free" in message
    )
    assert (
        f"pool {pool_id} asked for 3 x standard_d4s_v3 (4 vCPUs each) = 12 vCPUs and got 2 "
        "node(s)" in message
    )
    assert "lower the autoscale formula's targets (at most 2 x standard_d4s_v3 fit now)" in message
    assert f"request a quota increase for Batch account {account}" in message


def test_resize_errors_explained_with_the_numbers(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    """Each Batch account core quota's resize error, explained from the live account."""
    account = unique("rze")
    batch_rules(
        low_priority_retired=False,
        account_quotas={account: {"dedicated": 10, "low_priority": 2}},
    )
    batch, pools = batch_service_account(clients, sandbox, account)
    ctx = SimpleNamespace(clients=clients)
    batch.create_pool(pool_options("held", target_dedicated_nodes=2))
    wait_steady(batch, "held")
    batch.create_pool(pool_options("big", target_dedicated_nodes=5))
    big = wait_steady(batch, "big")
    (error,) = big.resize_errors
    assert error.code == "AccountCoreQuotaReached"
    text = explain_resize_error(ctx, pools, big, error)  # type: ignore[arg-type]
    assert text.startswith(
        "resize error AccountCoreQuotaReached: The specified account has reached core quota\n"
    )
    assert (
        f"Batch account {account}'s dedicated core quota is 10 vCPUs; 4 in use by other pools "
        "(held: 2 x standard_d2s_v3); 10 needed, 6 free" in text
    )
    assert "pool big asked for 5 x standard_d2s_v3 (2 vCPUs each) = 10 vCPUs and got 3" in text
    assert "lower pools[].dedicated_nodes (at most 3 x standard_d2s_v3 fit now)" in text

    batch.create_pool(pool_options("spot", target_low_priority_nodes=2))
    spot = wait_steady(batch, "spot")
    (error,) = spot.resize_errors
    assert error.code == "AccountLowPriorityCoreQuotaReached"
    text = explain_resize_error(ctx, pools, spot, error)  # type: ignore[arg-type]
    assert (
        f"Batch account {account}'s low-priority (Spot) core quota is 2 vCPUs; none in use; "
        "4 needed, 2 free" in text
    )
    assert "lower pools[].spot_nodes (at most 1 x standard_d2s_v3 fit now)" in text


def test_pool_quota_reached_names_the_pools(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    account = unique("pqr")
    batch_rules(account_quotas={account: {"pools": 2}})
    batch, pools = batch_service_account(clients, sandbox, account)
    batch.create_pool(pool_options("first"))
    batch.create_pool(pool_options("second"))
    with pytest.raises(PermanentAzureError) as refused:
        pools.create(pool_options("third"))
    assert refused.value.code == "PoolQuotaReached"
    ctx = SimpleNamespace(clients=clients)
    explained = pool_quota_error(ctx, pools, "third", refused.value)  # type: ignore[arg-type]
    assert explained.code == "PoolQuotaReached" and explained.status == 409
    assert (
        f"cannot create pool third: Batch account {account}'s pool quota of 2 pools is reached "
        "(it has 2 pool(s): first, second; Azure: Pool quota for the account has been reached."
        in explained.message
    )
    assert f"az batch pool delete --pool-id <id> --account-name {account}" in explained.message
    assert f"request a quota increase for Batch account {account}" in explained.message


def test_pool_quota_taken_after_preflight_names_the_pools(
    pools: PoolHarness,
    clients: AzureClients,
    sandbox: Connection,
    admin: SandboxAdmin,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    """Someone takes the account's last pool place while apply runs: the pool step's create
    is refused with PoolQuotaReached, explained with the pools that fill the account."""
    account = unique("pqa")
    batch_rules(account_quotas={account: {"pools": 1}})
    batch, _ = batch_service_account(clients, sandbox, account)
    spec = pools.spec("quickstart.yaml", in_account(account), name=SHARED)
    pool_id = load_spec(spec).pools[0].id
    # Hold the pool step's create for a moment, after preflight said there was room.
    hold = {"kind": "delay", "method": "POST", "path": f"/batch/{account}/pools$", "times": 1}
    admin.set_faults([{**hold, "delay": 2.0}])
    failed: list[BaseException] = []

    def run() -> None:
        try:
            pools.apply(spec)
        except BatchImageError as err:
            failed.append(err)

    apply = threading.Thread(target=run)
    apply.start()
    wait_for(lambda: admin.faults()["rules"][0]["fired"], "the pool create", timeout=120.0)
    late = unique("late")
    batch.create_pool(pool_options(late))
    apply.join(timeout=120.0)
    (error,) = failed
    message = str(error)
    assert f"step pool.{pool_id} failed" in message
    assert (
        f"PoolQuotaReached: cannot create pool {pool_id}: Batch account {account}'s pool quota "
        f"of 1 pools is reached (it has 1 pool(s): {late}; Azure: Pool quota for the account has "
        "been reached." in message
    )
    assert f"az batch pool delete --pool-id <id> --account-name {account}" in message
    assert pools.pool_ids(pool_id) == []
