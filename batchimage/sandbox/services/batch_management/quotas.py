"""A Batch account's quotas, as `GET batchAccounts/{name}` reports them and as the Batch
data plane enforces them (one source for both).

    quotas(world, record) -> {"poolQuota": 100, "activeJobAndJobScheduleQuota": 300,
                              "dedicatedCoreQuota": 500, ...}

Defaults are those of a new Batch account (learn.microsoft.com azure/batch/batch-quota-limit
gives the ranges; the values are those real new accounts report): 500 dedicated vCPUs,
100 low-priority vCPUs, 100 pools, 300 active jobs and job schedules, per-VM-family quotas
enforced, every general-purpose family at the account's dedicated quota and GPU / HPC
families at 0. Accounts in user-subscription mode report no core quotas (the REST spec:
"quota is managed on the subscription so this value is not returned"); their pool and job
quotas still apply.

Tests and rehearsals lower them per account with the sandbox config's `batch` mapping
(`PATCH /_sandbox/config`, config file):

    account_quotas: {"<account>": {"dedicated": 20, "low_priority": 0, "pools": 2,
                                   "active_jobs": 10, "families": {"standardDSv3Family": 8},
                                   "family_enforced": false}}

A user-subscription account's nodes meet the subscription's regional Compute quotas in
the account's region instead (the compute config's `quota`, per region with `regions`;
see batch_data.allocation). `core_quotas` is the older name of the same mapping (read
too; `account_quotas` wins).
"""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.context import World

DEDICATED = 500
LOW_PRIORITY = 100
POOLS = 100
ACTIVE_JOBS = 300

# The families a new account lists (general purpose at the dedicated quota) ...
GENERAL_FAMILIES = (
    "standardA0_A7Family",
    "standardAv2Family",
    "standardDv2Family",
    "standardDSv2Family",
    "standardDv3Family",
    "standardDSv3Family",
    "standardDv4Family",
    "standardDSv4Family",
    "standardDASv4Family",
    "standardDv5Family",
    "standardDSv5Family",
    "standardDASv5Family",
    "standardDDSv5Family",
    "standardEv3Family",
    "standardESv3Family",
    "standardEv5Family",
    "standardESv5Family",
    "standardFSv2Family",
)
# ... and the GPU / HPC ones, at 0 until a quota request grants them.
ZERO_FAMILIES = (
    "standardNCFamily",
    "standardNCSv3Family",
    "standardNCADSA100v4Family",
    "standardNDSFamily",
    "standardNVSv3Family",
    "standardHBrsv2Family",
)
# Properties this module owns: stored records never keep them (they are computed).
FIELDS = (
    "dedicatedCoreQuota",
    "lowPriorityCoreQuota",
    "dedicatedCoreQuotaPerVMFamily",
    "dedicatedCoreQuotaPerVMFamilyEnforced",
    "poolQuota",
    "activeJobAndJobScheduleQuota",
)


def overrides(world: World, account: str) -> dict[str, Any]:
    """The configured quota overrides of `account` (`account_quotas`, then `core_quotas`)."""
    batch = world.config.batch
    out: dict[str, Any] = {}
    for key in ("core_quotas", "account_quotas"):
        for name, found in (batch.get(key) or {}).items():
            if name.lower() == account.lower():
                out.update(found or {})
    return out


def family_quotas(dedicated: int, changed: dict[str, Any]) -> list[dict[str, Any]]:
    """`dedicatedCoreQuotaPerVMFamily`: every family, general ones at `dedicated`."""
    values = {name: dedicated for name in GENERAL_FAMILIES} | dict.fromkeys(ZERO_FAMILIES, 0)
    spelt = {name.lower(): name for name in values}
    for name, quota in changed.items():
        values[spelt.get(name.lower(), name)] = int(quota)
    return [{"name": name, "coreQuota": quota} for name, quota in values.items()]


def quotas(world: World, record: dict[str, Any]) -> dict[str, Any]:
    """The quota properties of Batch account `record` (stored ARM record)."""
    given = overrides(world, record["name"])
    out: dict[str, Any] = {}
    mode = (record.get("properties") or {}).get("poolAllocationMode", "BatchService")
    if mode == "BatchService":
        dedicated = int(given.get("dedicated", DEDICATED))
        out["dedicatedCoreQuota"] = dedicated
        out["lowPriorityCoreQuota"] = int(given.get("low_priority", LOW_PRIORITY))
        out["dedicatedCoreQuotaPerVMFamily"] = family_quotas(
            dedicated, dict(given.get("families") or {})
        )
        out["dedicatedCoreQuotaPerVMFamilyEnforced"] = bool(given.get("family_enforced", True))
    out["poolQuota"] = int(given.get("pools", POOLS))
    out["activeJobAndJobScheduleQuota"] = int(given.get("active_jobs", ACTIVE_JOBS))
    return out
