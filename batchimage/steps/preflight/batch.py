"""Check: each pool's Batch account exists, in the right region, in an allocation mode that
fits; each account retention also reads (`capture.gallery.keep_used_by`) exists and lists
its pools."""

from __future__ import annotations

from batchimage.core.errors import AzureError, TransientAzureError
from batchimage.steps.preflight.facts import Facts, pool_accounts, wants_spot
from batchimage.steps.preflight.report import CheckResult, fail, ok
from batchimage.steps.retention import KEEP_USED_BY, kept_for


def check_batch_accounts(facts: Facts) -> list[CheckResult]:
    """Existence, region (and a gallery replica there), Spot needs user-subscription mode."""
    spec = facts.spec
    replicas = {r.region for r in spec.image.capture.gallery.replicas}
    results = []
    for (group, name), pools in pool_accounts(spec).items():
        label = f"batch account {name}"
        account = facts.batch(group, name)
        if account is None:
            results.append(
                fail(
                    label,
                    f"not found in resource group {group}; create it (az batch account create "
                    f"--name {name} --resource-group {group} --location {spec.location}) or fix "
                    "pools[].batch_account",
                )
            )
            continue
        problems = []
        for pool in pools:
            given = pool.batch_account.location
            if given and given != account.location:
                problems.append(
                    f"pool {pool.id} says the account is in {given}, but it is in "
                    f"{account.location}; fix pools[].batch_account.location"
                )
        if account.location not in replicas:
            problems.append(
                f"the image has no replica in {account.location}, the account's region; add "
                f"`- region: {account.location}` to image.capture.gallery.replicas"
            )
        spot = [p.id for p in pools if wants_spot(p)]
        if spot and account.allocation_mode.lower() != "usersubscription":
            problems.append(
                f"pool(s) {', '.join(spot)} ask for Spot nodes, which need pool allocation mode "
                f"UserSubscription; this account uses {account.allocation_mode}. Create a Batch "
                "account with `--pool-allocation-mode UserSubscription` (and a Key Vault), or "
                "drop the Spot nodes"
            )
        if problems:
            results.append(fail(label, "; ".join(problems)))
        else:
            results.append(
                ok(
                    label,
                    f"{account.allocation_mode} mode in {account.location}; Entra ID "
                    "authentication will be used",
                )
            )
    return results + _kept_for(facts)


def _kept_for(facts: Facts) -> list[CheckResult]:
    """Each account `keep_used_by` adds (`retention.kept_for`): found, and its pools listed
    (the spec allows `keep_used_by` only beside `keep` or `keep_days`)."""
    results = []
    for group, name in kept_for(facts.spec):
        label = f"batch account {name} (retention)"
        try:
            account = facts.batch(group, name)
            used = facts.pools_used(account) if account is not None else []
        except TransientAzureError:
            raise
        except AzureError as err:
            why = (
                f"retention cannot read it or list its pools: {err}. Give this identity read "
                "access to the account (e.g. Reader), or remove it from "
                "image.capture.gallery.keep_used_by"
            )
            results.append(fail(label, why))
            continue
        if account is None:
            results.append(fail(label, f"not found in resource group {group}; {KEEP_USED_BY}"))
            continue
        results.append(ok(label, f"retention keeps the image versions its {len(used)} pool(s) use"))
    return results
