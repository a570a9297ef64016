"""Check: the build VM size is offered in the region, and the subscription has enough cores
for the build VM and for every fixed-size pool of a user-subscription Batch account (a
Batch-service account's own quotas: batch_quota.py)."""

from __future__ import annotations

from typing import Any

from batchimage.azure.arm import text
from batchimage.azure.gallery import builds_vm
from batchimage.steps.preflight.facts import Facts, pool_accounts
from batchimage.steps.preflight.report import CheckResult, fail, ok

INCREASE = (
    "request a quota increase (portal: Subscription > Usage + quotas, or `az quota create`) or "
    "choose another VM size or region"
)


def _vcpus(sku: Any) -> int:
    for cap in getattr(sku, "capabilities", None) or []:
        if text(cap.name).lower() == "vcpus":
            return int(cap.value)
    return 0


def _restricted(sku: Any, location: str) -> str | None:
    for restriction in getattr(sku, "restrictions", None) or []:
        if text(restriction.type).lower() == "location":
            return text(restriction.reason_code or "NotAvailable")
    return None


def check_quota(facts: Facts) -> list[CheckResult]:
    """One result per VM size: offered, and cores enough (family and regional)."""
    spec = facts.spec
    skus = facts.skus()
    need: dict[str, int] = {}  # usage name -> cores needed
    sizes: dict[str, list[str]] = {}  # usage name -> what needs it
    results: list[CheckResult] = []

    def add(size: str, cores_each: int, count: int, what: str, spot: bool) -> None:
        sku = skus.get(size.lower())
        family = text(getattr(sku, "family", "") or "").lower()
        names = ["lowprioritycores"] if spot else [family, "cores"]
        for name in names:
            if name:
                need[name] = need.get(name, 0) + cores_each * count
                sizes.setdefault(name, []).append(what)

    build = spec.image.build
    wanted = [(build.vm_size, "the build VM")] if builds_vm(spec) else []
    for pools in pool_accounts(spec).values():
        for pool in pools:
            wanted.append((pool.vm_size, f"pool {pool.id}"))
    for size, what in wanted:
        sku = skus.get(size.lower())
        if sku is None:
            results.append(
                fail(f"vm size {size}", f"{size} ({what}) is not offered in {spec.location}")
            )
            continue
        reason = _restricted(sku, spec.location)
        if reason:
            results.append(
                fail(
                    f"vm size {size}", f"{size} ({what}) is restricted in {spec.location}: {reason}"
                )
            )
    if any(r.status == "fail" for r in results):
        return results
    if builds_vm(spec):
        add(build.vm_size, _vcpus(skus[build.vm_size.lower()]), 1, "the build VM", build.spot)
    for (group, name), pools in pool_accounts(spec).items():
        account = facts.batch(group, name)
        if account is None:
            continue
        for pool in pools:
            cores = _vcpus(skus[pool.vm_size.lower()])
            if account.allocation_mode.lower() == "usersubscription":
                if pool.dedicated_nodes:
                    add(pool.vm_size, cores, pool.dedicated_nodes, f"pool {pool.id}", False)
                if pool.spot_nodes:
                    add(pool.vm_size, cores, pool.spot_nodes, f"pool {pool.id} (Spot)", True)
    usages = facts.usages()
    for name, cores in sorted(need.items()):
        current, limit, label = usages.get(name, (0, -1, name))
        if limit < 0:
            continue
        who = ", ".join(sizes[name])
        if current + cores > limit:
            results.append(
                fail(
                    f"quota {label}",
                    f"{who} need {cores} vCPUs; {current} of {limit} are in use in "
                    f"{spec.location}. Next: {INCREASE}",
                )
            )
        else:
            results.append(
                ok(f"quota {label}", f"{cores} vCPUs needed ({who}); {limit - current} free")
            )
    return results
