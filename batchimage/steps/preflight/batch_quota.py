"""Check: each Batch account has room for the spec's pools - its pool quota, and (Batch-service
mode) the dedicated vCPU quotas, total and per VM family, next to what its other pools hold.

Read from the account (management API: quotas) and its data plane (the pools and their
nodes; a resizing pool counts with its targets). A spec pool's own pools (its id, or the
generations this pipeline made for it) are not "other" pools.
Autoscale pools are not counted (their formula decides); Spot nodes in Batch-service mode
are refused by the Batch account check.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from batchimage.azure.batch_quota import (
    AccountQuotas,
    CoreQuota,
    PoolUse,
    VmSize,
    core_quotas,
    quota_hint,
    quotas_of,
    sizes_from_skus,
)
from batchimage.steps.preflight.facts import Facts, pool_accounts
from batchimage.steps.preflight.report import CheckResult, fail, ok, warn


def check_batch_quota(facts: Facts) -> list[CheckResult]:
    """Per Batch account: one result for its pool quota, one per vCPU quota the pools meet."""
    results: list[CheckResult] = []
    for (group, name), pools in pool_accounts(facts.spec).items():
        account = facts.batch(group, name)
        if account is None:
            continue  # the Batch account check says so
        raw = facts.batch_raw(group, name)  # read once, with the Batch account check
        if raw is None:
            continue
        quotas = quotas_of(raw, group)
        used = facts.pools_used(account)
        pipeline = facts.ctx.pipeline
        owned = {str(p.id): [u.id for u in used if u.stands_for(p.id, pipeline)] for p in pools}
        results += _pool_count(quotas, pools, used, owned)
        if quotas.batch_service:
            sizes = sizes_from_skus(facts.skus(account.location).values())
            results += _cores(quotas, pools, used, owned, sizes)
    return results


def _pool_count(
    quotas: AccountQuotas, pools: list[Any], used: list[PoolUse], owned: dict[str, list[str]]
) -> list[CheckResult]:
    if quotas.pools is None:
        return []
    label = f"batch pool quota {quotas.name}"
    new = [str(p.id) for p in pools if not owned[str(p.id)]]
    rollouts = [str(p.id) for p in pools if owned[str(p.id)] and p.rollout == "blue_green"]
    after = len(used) + len(new)
    have = f"the account has {len(used)} of its {quotas.pools} pools"
    delete = (
        "delete pools it no longer needs (`az batch pool delete --pool-id <id> --account-name "
        f"{quotas.name}`), or {quota_hint(quotas.name, quotas.group)}"
    )
    if after > quotas.pools:
        return [
            fail(
                label,
                f"the spec creates pool(s) {', '.join(new)}; {have} (pool quota). Next: {delete}",
            )
        ]
    if after + len(rollouts) > quotas.pools:
        return [
            warn(
                label,
                f"a blue_green rollout of pool(s) {', '.join(rollouts)} needs one more pool "
                f"while both generations run; {have}. Next: {delete}",
            )
        ]
    return [ok(label, f"{after} of {quotas.pools} pools after apply")]


def _cores(
    quotas: AccountQuotas,
    pools: list[Any],
    used: list[PoolUse],
    owned: dict[str, list[str]],
    sizes: dict[str, VmSize],
) -> list[CheckResult]:
    """The spec's fixed-size pools in one Batch-service account against its vCPU quotas."""
    fixed = [p for p in pools if p.autoscale is None and p.dedicated_nodes]
    mine = [i for ids in owned.values() for i in ids] + list(owned)
    totals: dict[str, tuple[CoreQuota, list[str], Any]] = {}
    for pool in fixed:
        size = sizes.get(str(pool.vm_size).lower())
        if size is None:
            continue  # the VM size check reports it
        ask = f"pool {pool.id} ({pool.dedicated_nodes} x {pool.vm_size}, {size.cores} vCPUs each)"
        for quota in core_quotas(quotas, sizes, used, mine, pool.vm_size, pool.dedicated_nodes, 0):
            if quota.label in totals:
                before, asks, first = totals[quota.label]
                quota = replace(before, needed=before.needed + quota.needed)
                totals[quota.label] = (quota, [*asks, ask], first)
            else:
                totals[quota.label] = (quota, [ask], (pool, size))
    results = []
    label = f"batch quota {quotas.name}"
    for quota, asks, (pool, size) in totals.values():
        who = ", ".join(asks)
        if not quota.short:
            results.append(ok(label, f"{who}: {quota.text()}"))
            continue
        whole = " (more than the whole quota)" if quota.needed > quota.limit else ""
        fit = f" (at most {quota.free // size.cores} x {pool.vm_size} fit now)"
        other = " or a VM size of another family" if quota.kind == "family" else ""
        results.append(
            fail(
                label,
                f"{who} need{'s' if len(asks) == 1 else ''} {quota.needed} dedicated "
                f"vCPUs{whole}; the account's {quota.text()}. Next: "
                f"{quota_hint(quotas.name, quotas.group)}; or lower pools[].dedicated_nodes"
                f"{fit if len(asks) == 1 else ''}, or pick a smaller vm_size{other}",
            )
        )
    return results
