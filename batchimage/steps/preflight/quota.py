"""Check: every VM size is offered where it runs and boots the image's Hyper-V generation,
and the subscription has the vCPUs where they are charged: the build VM in the spec's
region, the nodes of a user-subscription Batch account's fixed-size pools in that
account's region ("Batch service quotas and limits": its VMs are made in the
subscription, against the regional Compute quotas). A Batch-service account's own quotas:
batch_quota.py.

Compute usage counts the nodes a pool already holds: those of the spec pool's own pools
(its id, or generations this pipeline made) are taken off, as they are what the pool
needs, not other use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchimage.azure.arm import text
from batchimage.steps.gallery import builds_vm
from batchimage.steps.preflight.facts import Facts, pool_accounts
from batchimage.steps.preflight.report import CheckResult, fail, ok

INCREASE = (
    "request a quota increase (portal: Subscription > Usage + quotas, or `az quota create`) or "
    "choose another VM size or region"
)


@dataclass(frozen=True)
class Need:
    """A VM size the spec runs in a region: for what, how many (0: not charged to the
    subscription's Compute quota) and whether Spot."""

    location: str
    size: str
    what: str
    count: int
    spot: bool


def _caps(sku: Any) -> dict[str, str]:
    return {text(c.name).lower(): text(c.value) for c in getattr(sku, "capabilities", None) or []}


def _vcpus(sku: Any) -> int:
    value = _caps(sku).get("vcpus", "")
    return int(value) if value.isdigit() else 0


def _restricted(sku: Any) -> str | None:
    for restriction in getattr(sku, "restrictions", None) or []:
        if text(restriction.type).lower() == "location":
            return text(restriction.reason_code or "NotAvailable")
    return None


def _needs(facts: Facts) -> tuple[list[Need], dict[str, dict[str, int]]]:
    """What the spec runs where, and per region the cores (by usage name) the spec pools'
    own live pools hold already in user-subscription accounts."""
    spec = facts.spec
    build = spec.image.build
    needs = [Need(spec.location, build.vm_size, "the build VM", 1, build.spot)]
    needs = needs if builds_vm(spec) else []
    held: dict[str, dict[str, int]] = {}
    for (group, name), pools in pool_accounts(spec).items():
        account = facts.batch(group, name)
        user = account is not None and account.allocation_mode.lower() == "usersubscription"
        for pool in pools:
            where = account.location if account else pool.batch_account.location
            where = where or spec.location
            needs.append(Need(where, pool.vm_size, f"pool {pool.id}", 0, False))
            if not user:
                continue
            if pool.dedicated_nodes:
                needs.append(
                    Need(where, pool.vm_size, f"pool {pool.id}", pool.dedicated_nodes, False)
                )
            if pool.spot_nodes:
                needs.append(
                    Need(where, pool.vm_size, f"pool {pool.id} (Spot)", pool.spot_nodes, True)
                )
        if user and account is not None:
            _held(facts, account, pools, held.setdefault(account.location, {}))
    return needs, held


def _held(facts: Facts, account: Any, pools: list[Any], held: dict[str, int]) -> None:
    """Add the cores the spec pools' own live pools hold (by usage name) to `held`."""
    skus = facts.skus(account.location)
    pipeline = facts.ctx.pipeline
    for use in facts.pools_used(account):
        if not any(use.stands_for(p.id, pipeline) for p in pools):
            continue
        sku = skus.get(use.vm_size.lower())
        if sku is None:
            continue
        cores = _vcpus(sku)
        family = text(getattr(sku, "family", "") or "").lower()
        for name, count in (("cores", use.dedicated), (family, use.dedicated)):
            held[name] = held.get(name, 0) + cores * count
        held["lowprioritycores"] = held.get("lowprioritycores", 0) + cores * use.low_priority


def _size_problems(facts: Facts, needs: list[Need]) -> list[CheckResult]:
    """Each VM size offered in its region, not restricted there, booting the image's
    Hyper-V generation (resource SKU capability HyperVGenerations)."""
    generation = facts.spec.image.capture.gallery.definition.hyper_v_generation.upper()
    results: list[CheckResult] = []
    seen: set[tuple[str, str]] = set()
    for need in needs:
        key = (need.location, need.size.lower())
        if key in seen:
            continue
        seen.add(key)
        label = f"vm size {need.size}"
        sku = facts.skus(need.location).get(need.size.lower())
        if sku is None:
            results.append(
                fail(label, f"{need.size} ({need.what}) is not offered in {need.location}")
            )
            continue
        reason = _restricted(sku)
        if reason:
            results.append(
                fail(label, f"{need.size} ({need.what}) is restricted in {need.location}: {reason}")
            )
            continue
        boots = [g.strip().upper() for g in _caps(sku).get("hypervgenerations", "").split(",")]
        boots = [g for g in boots if g]
        if boots and generation not in boots:
            others = _sizes_for(facts, need.location, generation, _vcpus(sku))
            results.append(
                fail(
                    label,
                    f"{need.size} ({need.what}) cannot boot Hyper-V generation {generation} "
                    f"images (it boots {', '.join(boots)}); pick a size that boots "
                    f"{generation}{' such as ' + ', '.join(others) if others else ''}, or "
                    f"build a {boots[0]} image (image.capture.gallery.definition."
                    "hyper_v_generation and a base of that generation)",
                )
            )
    return results


def _sizes_for(facts: Facts, location: str, generation: str, vcpus: int) -> list[str]:
    """Up to three sizes in `location` with `vcpus` vCPUs that boot `generation`."""
    found = []
    for sku in facts.skus(location).values():
        caps = _caps(sku)
        gens = [g.strip().upper() for g in caps.get("hypervgenerations", "").split(",")]
        if generation in gens and _vcpus(sku) == vcpus and not _restricted(sku):
            found.append(text(sku.name))
    return sorted(found)[:3]


def check_quota(facts: Facts) -> list[CheckResult]:
    """VM sizes (offered, not restricted, booting the image's generation), then one result
    per Compute quota the spec meets, in the region where it is charged."""
    spec = facts.spec
    needs, held = _needs(facts)
    results = _size_problems(facts, needs)
    if results:
        return results
    need: dict[tuple[str, str], int] = {}  # (region, usage name) -> cores needed
    who: dict[tuple[str, str], list[str]] = {}
    for item in needs:
        if not item.count:
            continue
        sku = facts.skus(item.location)[item.size.lower()]
        family = text(getattr(sku, "family", "") or "").lower()
        for name in ["lowprioritycores"] if item.spot else [family, "cores"]:
            if name:
                key = (item.location, name)
                need[key] = need.get(key, 0) + _vcpus(sku) * item.count
                who.setdefault(key, []).append(item.what)
    for (location, name), cores in sorted(need.items()):
        current, limit, label = facts.usages(location).get(name, (0, -1, name))
        if limit < 0:
            continue
        current = max(current - held.get(location, {}).get(name, 0), 0)
        title = f"quota {label}" + (f" in {location}" if location != spec.location else "")
        users = ", ".join(who[(location, name)])
        if current + cores > limit:
            results.append(
                fail(
                    title,
                    f"{users} need {cores} vCPUs; {current} of {limit} are in use in "
                    f"{location}. Next: {INCREASE}",
                )
            )
        else:
            results.append(
                ok(title, f"{cores} vCPUs needed ({users}) in {location}; {limit - current} free")
            )
    return results
