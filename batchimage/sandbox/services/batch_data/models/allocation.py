"""Pool allocation: resizes move a pool `steady -> resizing -> steady` over simulated
time; surplus nodes leave at once, new nodes arrive when the resize completes, limited by
vCPU quotas and configured allocation failures (reported in `resizeErrors`). Stop resize
goes `stopping -> steady`; delete empties the pool, then forgets it.

Quotas, as Azure documents them (values: batch_management.quotas): Batch-service accounts
use the account's dedicated vCPU quota and, when `dedicatedCoreQuotaPerVMFamilyEnforced`,
the quota of the VM size's family too; low-priority nodes the low-priority vCPU quota
(without families). Low-priority nodes were retired on 2025-09-30 (see
rules.low_priority_retired). A resize gets as many nodes as fit in every quota and ends
`steady` with the resize error of the quota that ran out. User-subscription accounts get
Spot nodes for low-priority targets, and their nodes are VMs of the subscription in the
Batch account's region ("Batch service quotas and limits"): they meet the Compute
service's regional vCPU quotas there (total and family; Spot: low-priority vCPUs), next to
every other VM of the subscription in that region, and show in its Compute usage
(`subscription_vms`, registered with compute.quota); the error comes back as
AllocationFailed with the Compute provider's error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.context import World
from batchimage.sandbox.services.batch_data import rules
from batchimage.sandbox.services.batch_data.models import (
    catalog,
    images,
    nodes,
    pools,
    samples,
    timers,
)
from batchimage.sandbox.services.batch_data.models.accounts import Account, account_of
from batchimage.sandbox.services.batch_data.wire import seconds_of
from batchimage.sandbox.services.compute import settings as compute_settings
from batchimage.sandbox.services.compute.models import quota as compute_quota

RETIRED = (
    "Low-priority VMs were retired on 30 September 2025 and cannot be allocated in Batch "
    "accounts in Batch service pool allocation mode; use Spot VMs from a Batch account in "
    "user subscription pool allocation mode."
)


def resize(world: World, record: dict[str, Any], dedicated: int, low: int) -> None:
    """Start resizing `record` to the given targets."""
    if (record["targetDedicatedNodes"], record["targetLowPriorityNodes"]) != (dedicated, low):
        pools.changed(world, record)
    record["targetDedicatedNodes"] = dedicated
    record["targetLowPriorityNodes"] = low
    record.pop("resizeErrors", None)
    record["_resize"] += 1
    grow = False
    for is_dedicated, want in ((True, dedicated), (False, low)):
        members = [n for n in nodes.members(record) if n["isDedicated"] == is_dedicated]
        surplus = len(members) - want
        for node in nodes.removal_order(members)[: max(surplus, 0)]:
            nodes.leave(world, node)
        grow = grow or surplus < 0
    pools.set_allocation(world, record, "resizing")
    seconds = world.config.duration("pool.allocate" if grow else "pool.shrink", 60.0)
    timeout = seconds_of(record["resizeTimeout"]) or 900.0
    args = {"pool": _key(record), "resize": record["_resize"], "timed_out": seconds > timeout}
    timers.later(world, min(seconds, timeout), "batch.resize_done", args)


def stop(world: World, record: dict[str, Any]) -> None:
    """Stop a running resize: nodes already there stay, nodes not yet there never come."""
    if record["allocationState"] != "resizing":
        return
    record["_resize"] += 1
    for node in record["_nodes"].values():
        if node["state"] == "leavingpool":
            nodes.stay(world, node)
    pools.set_allocation(world, record, "stopping")
    seconds = world.config.duration("pool.stop_resize", 30.0)
    args = {"pool": _key(record), "resize": record["_resize"]}
    timers.later(world, seconds, "batch.stop_done", args)


def delete(world: World, record: dict[str, Any]) -> None:
    """Mark the pool deleting; its nodes leave, and it is gone after `pool.delete`."""
    record["_resize"] += 1
    for node in record["_nodes"].values():
        nodes.leave(world, node)
    pools.set_state(world, record, "deleting")
    pools.set_allocation(world, record, "resizing")
    seconds = world.config.duration("pool.delete", 120.0)
    timers.later(world, seconds, "batch.pool_deleted", {"pool": _key(record)})


def _key(record: dict[str, Any]) -> str:
    return pools.key(record["_account"], record["id"])


def _current(world: World, args: dict[str, Any]) -> dict[str, Any] | None:
    """The pool a timer is for, unless a later resize, stop or delete superseded it."""
    record: dict[str, Any] | None = pools.table(world).get(args["pool"])
    if record is None or record["_resize"] != args.get("resize") or record["state"] != "active":
        return None
    return record


@timers.action("batch.resize_done")
def _resize_done(world: World, args: dict[str, Any]) -> None:
    record = _current(world, args)
    account = account_of(world, record["_account"]) if record else None
    if record is None or account is None:
        return
    for node_id in [i for i, n in record["_nodes"].items() if n["state"] == "leavingpool"]:
        samples.node_removed(record, record["_nodes"].pop(node_id), timers.now(world))
    errors: list[dict[str, Any]] = []
    for is_dedicated, name in ((True, "targetDedicatedNodes"), (False, "targetLowPriorityNodes")):
        have = sum(1 for n in record["_nodes"].values() if n["isDedicated"] == is_dedicated)
        want = record[name] - have
        if want <= 0:
            continue
        if args.get("timed_out"):
            errors.append(_timed_out(is_dedicated))
            continue
        refused = images.allocation_error(world, account, record)
        if refused is not None:
            errors.append(_provider_failed(is_dedicated, refused.arm_body()))
            continue
        granted, error = _grant(world, account, record, is_dedicated, want)
        for _ in range(granted):
            nodes.add(world, record, is_dedicated)
        if error is not None:
            errors.append(error)
    if errors:
        record["resizeErrors"] = errors
    pools.set_allocation(world, record, "steady")


@timers.action("batch.stop_done")
def _stop_done(world: World, args: dict[str, Any]) -> None:
    record = _current(world, args)
    if record is None:
        return
    dedicated, low = pools.counts(record)
    errors = []
    for kind, have, want in (
        ("dedicated", dedicated, record["targetDedicatedNodes"]),
        ("low priority", low, record["targetLowPriorityNodes"]),
    ):
        if have < want:
            errors.append(
                {
                    "code": "ResizeStopped",
                    "message": f"Desired number of {kind} nodes could not be allocated due "
                    "to a stop resize operation",
                }
            )
    if errors:
        record["resizeErrors"] = errors
    pools.set_allocation(world, record, "steady")


@timers.action("batch.pool_deleted")
def _pool_deleted(world: World, args: dict[str, Any]) -> None:
    if pools.table(world).pop(args["pool"], None) is not None:
        world.store.touch()


# -- quotas and failures --------------------------------------------------------------


def _grant(
    world: World, account: Account, record: dict[str, Any], dedicated: bool, want: int
) -> tuple[int, dict[str, Any] | None]:
    """How many of `want` new nodes the pool gets, and the resize error for the rest."""
    kind = "dedicated" if dedicated else "low priority"
    reason = rules.allocation_failure(world, record["id"], dedicated)
    if reason is None and not dedicated and account.mode == "BatchService":
        reason = RETIRED if rules.low_priority_retired(world) else None
    if reason is not None:
        return 0, _allocation_failed(kind, {"Reason": reason})
    size = catalog.vm_size(record["vmSize"])
    cores = size.cores if size else 1
    limits = _limits(world, account, dedicated, size)
    fits = [max(limit.quota - limit.used, 0) // cores for limit in limits]
    allowed = min([want, *fits])
    if allowed >= want:
        return want, None
    short = limits[fits.index(min(fits))]
    if account.mode == "UserSubscription":
        location = arm.norm_location(account.location)
        refusal = compute_quota.exceeded(
            short.name, location, short.quota, short.used, want * cores
        )
        return allowed, _provider_failed(dedicated, refusal.arm_body())
    return allowed, {"code": short.code, "message": short.message}


@dataclass(frozen=True)
class Limit:
    """One vCPU quota a resize must fit in: its size, what the account's nodes use, and
    the resize error that says it is reached."""

    quota: int
    used: int
    code: str = ""
    message: str = ""
    name: str = ""


def _limits(
    world: World, account: Account, dedicated: bool, size: catalog.VmSize | None
) -> list[Limit]:
    """The quotas new nodes of this kind count against (an account's resize errors: the
    SDK's PoolResizeErrorCodes; messages as the service words them)."""
    props = account.properties
    if account.mode == "UserSubscription":
        return _subscription_limits(world, account, dedicated, size)
    used_total, used_family = _used(world, account, dedicated, size.family if size else "")
    if not dedicated:
        return [
            Limit(
                int(props.get("lowPriorityCoreQuota") or 0),
                used_total,
                "AccountLowPriorityCoreQuotaReached",
                "The specified account has reached low priority core quota",
            )
        ]
    limits = [
        Limit(
            int(props.get("dedicatedCoreQuota") or 0),
            used_total,
            "AccountCoreQuotaReached",
            "The specified account has reached core quota",
        )
    ]
    families = {f["name"].lower(): f for f in props.get("dedicatedCoreQuotaPerVMFamily") or []}
    family = families.get(size.family.lower()) if size else None
    if props.get("dedicatedCoreQuotaPerVMFamilyEnforced") and family is not None:
        limits.append(
            Limit(
                int(family["coreQuota"]),
                used_family,
                "AccountVMSeriesCoreQuotaReached",
                f"The specified account has reached VM series core quota for {family['name']}",
            )
        )
    return limits


def _subscription_limits(
    world: World, account: Account, dedicated: bool, size: catalog.VmSize | None
) -> list[Limit]:
    """The Compute regional quotas a user-subscription account's new nodes meet, in the
    account's region, with what the subscription uses there (its VMs and Batch nodes)."""
    location = arm.norm_location(account.location)
    now = compute_quota.usage(world, account.subscription_id, location)

    def limit(name: str, used: int, shown: str) -> Limit:
        return Limit(compute_settings.quota_limit(world, name, location), used, name=shown)

    if not dedicated:
        return [limit("lowPriorityCores", now.spot, "LowPriorityCores")]
    limits = [limit("cores", now.cores, "Total Regional Cores")]
    if size is not None:
        used = now.families.get(size.family, 0)
        limits.insert(0, limit(size.family, used, f"{size.family} Cores"))
    return limits


def subscription_vms(world: World, subscription: str, location: str) -> list[tuple[str, bool, int]]:
    """The VMs user-subscription Batch accounts hold in `subscription` and `location`:
    (VM size, spot, count) per pool and node kind (a Compute usage source)."""
    held: list[tuple[str, bool, int]] = []
    for record in pools.table(world).values():
        account = account_of(world, record["_account"])
        if account is None or account.mode != "UserSubscription":
            continue
        if account.subscription_id.lower() != subscription.lower():
            continue
        if arm.norm_location(account.location) != arm.norm_location(location):
            continue
        for spot in (False, True):
            count = sum(1 for n in record["_nodes"].values() if n["isDedicated"] != spot)
            if count:
                held.append((str(record["vmSize"]), spot, count))
    return held


def _used(world: World, account: Account, dedicated: bool, family: str) -> tuple[int, int]:
    """vCPUs the account's nodes of this kind use (all, and of VM family `family`)."""
    total = in_family = 0
    for record in pools.in_account(world, account):
        size = catalog.vm_size(record["vmSize"])
        cores = size.cores if size else 1
        count = sum(1 for n in record["_nodes"].values() if n["isDedicated"] == dedicated)
        total += count * cores
        if size and size.family.lower() == family.lower():
            in_family += count * cores
    return total, in_family


def _timed_out(dedicated: bool) -> dict[str, Any]:
    kind = "dedicated" if dedicated else "low priority"
    return {
        "code": "AllocationTimedout",  # sic: the service's spelling (REST example PoolList.json)
        "message": f"Desired number of {kind} nodes could not be allocated as the resize "
        "timeout was reached",
    }


def _allocation_failed(kind: str, values: dict[str, str]) -> dict[str, Any]:
    return {
        "code": "AllocationFailed",
        "message": f"Desired number of {kind} nodes could not be allocated",
        "values": [{"name": k, "value": v} for k, v in values.items()],
    }


def _provider_failed(dedicated: bool, provider: dict[str, Any]) -> dict[str, Any]:
    """AllocationFailed relaying the provider's error ("Check for pool and node errors",
    relay provider error example 1: the values are the JSON and whether it was cut)."""
    kind = "dedicated" if dedicated else "low priority"
    return _allocation_failed(
        kind,
        {"Provider Error Json": json.dumps(provider), "Provider Error Json Truncated": "False"},
    )
