"""Check: every region the spec names is one of the subscription's locations (an unknown
one is said as such, with the nearest name, before any check that reads a region)."""

from __future__ import annotations

from typing import Any

from batchimage.azure.regions import subscription_locations
from batchimage.spec.regions import unknown_region
from batchimage.steps.preflight.facts import Facts
from batchimage.steps.preflight.report import CheckResult, fail, ok


def spec_regions(spec: Any) -> dict[str, str]:
    """Each region the spec names -> the first field naming it."""
    named: dict[str, str] = {}
    named.setdefault(spec.location, "location")
    for pool in spec.pools:
        if pool.batch_account.location:
            named.setdefault(pool.batch_account.location, f"pool {pool.id}'s Batch account")
    for replica in spec.image.capture.gallery.replicas or []:
        named.setdefault(replica.region, "image.capture.gallery.replicas")
    return named


def check_region(facts: Facts) -> list[CheckResult]:
    """One result: the regions found, or each unknown one with its nearest known name."""
    sub = facts.clients.subscription_id
    known = facts.memo("locations", lambda: subscription_locations(facts.clients))
    named = spec_regions(facts.spec)
    unknown = [name for name in named if name not in known]
    if not unknown:
        return [ok("region", f"{', '.join(named)}: location(s) of subscription {sub}")]
    return [
        fail(
            "region",
            unknown_region(
                name,
                known,
                f"({named[name]}): not a location of subscription {sub}",
                "`az account list-locations -o table` lists them",
            ),
        )
        for name in unknown
    ]
