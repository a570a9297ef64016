"""Batch account quotas, through the real BatchManagementClient and BatchClient: what a new
account reports (and a user-subscription one does not), the `account_quotas` knob that
lowers them (the GET shows what is enforced), pool and active-job quotas refusing a create
with 409, and resizes / autoscale beyond a core quota ending steady with fewer nodes and
the quota's resize error. The Batch account GET keeps the official example's shape."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.batch import models as bm
from azure.core.exceptions import ResourceExistsError

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.connection import Connection
from tests.sandbox import batch_support
from tests.sandbox.batch_support import new_account, pool_options, wait_for, wait_steady
from tests.sandbox.conformance import check
from tests.sandbox.conformance_cases import CASES

batch_rules = batch_support.batch_rules  # fixtures


def test_new_account_quotas(
    clients: AzureClients, sandbox: Connection, unique: Callable[[str], str]
) -> None:
    name = unique("nq")
    new_account(clients, sandbox, name)
    account = clients.batch_management.batch_account.get(sandbox.resource_group, name)
    assert (account.dedicated_core_quota, account.low_priority_core_quota) == (500, 100)
    assert (account.pool_quota, account.active_job_and_job_schedule_quota) == (100, 300)
    assert account.dedicated_core_quota_per_vm_family_enforced is True
    families = {q.name: q.core_quota for q in account.dedicated_core_quota_per_vm_family}
    assert families["standardDSv5Family"] == families["standardDSv3Family"] == 500
    assert families["standardNCFamily"] == 0  # GPU families start at 0

    seeded = clients.batch_management.batch_account.get(
        sandbox.resource_group, sandbox.batch_account
    )  # user subscription: core quotas live on the subscription and are not returned
    assert seeded.dedicated_core_quota is None and seeded.low_priority_core_quota is None
    assert seeded.dedicated_core_quota_per_vm_family is None
    assert (seeded.pool_quota, seeded.active_job_and_job_schedule_quota) == (100, 300)


def test_lowered_quotas_show_in_the_account(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    name = unique("lq")
    new_account(clients, sandbox, name)
    batch_rules(
        account_quotas={
            name: {
                "dedicated": 40,
                "low_priority": 0,
                "pools": 3,
                "active_jobs": 7,
                "families": {"standarddsv3family": 8, "standardHBv3Family": 120},
                "family_enforced": False,
            }
        }
    )
    account = clients.batch_management.batch_account.get(sandbox.resource_group, name)
    assert (account.dedicated_core_quota, account.low_priority_core_quota) == (40, 0)
    assert (account.pool_quota, account.active_job_and_job_schedule_quota) == (3, 7)
    assert account.dedicated_core_quota_per_vm_family_enforced is False
    families = {q.name: q.core_quota for q in account.dedicated_core_quota_per_vm_family}
    assert families["standardDSv3Family"] == 8 and families["standardDSv5Family"] == 40
    assert families["standardHBv3Family"] == 120


def test_pool_quota_refuses_one_more_pool(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    name = unique("pq")
    client = new_account(clients, sandbox, name)
    batch_rules(account_quotas={name: {"pools": 2}})
    client.create_pool(pool_options("one"))
    client.create_pool(pool_options("two"))
    with pytest.raises(ResourceExistsError) as full:
        client.create_pool(pool_options("three"))
    assert full.value.status_code == 409
    assert full.value.error is not None and full.value.error.code == "PoolQuotaReached"
    assert str(full.value.error.message).startswith("Pool quota for the account has been reached.")
    client.begin_delete_pool("one", polling_interval=0).result()
    wait_for(lambda: "one" not in {p.id for p in client.list_pools()}, "pool one gone")
    client.create_pool(pool_options("three"))  # a deleted pool frees its place


def test_active_job_quota(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    name = unique("jq")
    client = new_account(clients, sandbox, name)
    batch_rules(account_quotas={name: {"active_jobs": 1}})
    client.create_pool(pool_options("p"))
    pool = bm.BatchPoolInfo(pool_id="p")
    client.create_job(bm.BatchJobCreateOptions(id="first", pool_info=pool))
    with pytest.raises(ResourceExistsError) as full:
        client.create_job(bm.BatchJobCreateOptions(id="second", pool_info=pool))
    assert full.value.error is not None
    assert full.value.error.code == "ActiveJobAndScheduleQuotaReached"


def test_family_quota_when_enforced_and_not(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    name = unique("fq")
    client = new_account(clients, sandbox, name)
    batch_rules(account_quotas={name: {"dedicated": 40, "families": {"standardDSv3Family": 10}}})
    client.create_pool(pool_options("busy", vm_size="Standard_D4s_v3", target_dedicated_nodes=1))
    wait_steady(client, "busy")  # 4 of the family's 10 vCPUs in use
    client.create_pool(pool_options("more", vm_size="Standard_D2s_v3", target_dedicated_nodes=5))
    pool = wait_steady(client, "more")
    assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (5, 3)
    (error,) = pool.resize_errors
    assert (error.code, error.message) == (
        "AccountVMSeriesCoreQuotaReached",
        "The specified account has reached VM series core quota for standardDSv3Family",
    )
    other = pool_options("other", vm_size="Standard_D2s_v5", target_dedicated_nodes=5)
    client.create_pool(other)  # another family: only the 40 vCPUs of the account count
    assert wait_steady(client, "other").current_dedicated_nodes == 5

    batch_rules(
        account_quotas={
            name: {
                "dedicated": 40,
                "families": {"standardDSv3Family": 10},
                "family_enforced": False,
            }
        }
    )
    client.begin_resize_pool(
        "more", bm.BatchPoolResizeOptions(target_dedicated_nodes=6), polling_interval=0
    ).result()
    more = wait_steady(client, "more")
    assert more.current_dedicated_nodes == 6 and not more.resize_errors


def test_low_priority_quota(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    name = unique("lp")
    client = new_account(clients, sandbox, name)
    batch_rules(low_priority_retired=False, account_quotas={name: {"low_priority": 6}})
    client.create_pool(pool_options("spot", target_low_priority_nodes=4))
    pool = wait_steady(client, "spot")
    assert (pool.current_low_priority_nodes, pool.current_dedicated_nodes) == (3, 0)
    (error,) = pool.resize_errors
    assert (error.code, error.message) == (
        "AccountLowPriorityCoreQuotaReached",
        "The specified account has reached low priority core quota",
    )


def test_autoscale_beyond_quota(
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
    batch_rules: Callable[..., None],
) -> None:
    name = unique("aq")
    client = new_account(clients, sandbox, name)
    batch_rules(account_quotas={name: {"dedicated": 6}})
    options = pool_options(
        "auto",
        target_dedicated_nodes=None,
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = 5;",
    )
    client.create_pool(options)

    def settled() -> bm.BatchPool | None:
        found = client.get_pool("auto")
        done = found.allocation_state == "steady" and found.target_dedicated_nodes == 5
        return found if done else None

    pool: bm.BatchPool = wait_for(settled, "autoscale pool steady at its target")
    assert pool.current_dedicated_nodes == 3
    assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]


def test_account_get_keeps_the_example_shape(
    clients: AzureClients,
    sandbox: Connection,
    batch_rules: Callable[..., None],
) -> None:
    (case,) = [c for c in CASES if c.example.endswith("/BatchAccountGet.json")]
    assert case.setup is not None
    case.setup(clients, sandbox)
    batch_rules(account_quotas={"sampleacct": {"dedicated": 20, "low_priority": 20, "pools": 20}})
    assert check(case, sandbox, clients) == []
    account = clients.batch_management.batch_account.get(
        "default-azurebatch-japaneast", "sampleacct"
    )
    assert (account.dedicated_core_quota, account.pool_quota) == (20, 20)
