"""Check: each pool's Batch account supports the base image (a node agent SKU exists for it)
and Batch support for it does not end within 90 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from batchimage.azure.node_agents import agents_for, match_marketplace
from batchimage.core.errors import AzureError, TransientAzureError
from batchimage.steps.preflight.facts import Facts, pool_accounts
from batchimage.steps.preflight.report import CheckResult, fail, ok, warn

SOON = timedelta(days=90)


def check_node_agents(facts: Facts) -> list[CheckResult]:
    """One result per Batch account with pools."""
    spec = facts.spec
    results = []
    for (group, name), pools in pool_accounts(spec).items():
        label = f"node agent ({name})"
        account = facts.batch(group, name)
        if account is None:
            continue  # the batch account check reports it
        try:
            images = facts.supported(account.endpoint)
        except TransientAzureError:
            raise
        except AzureError as err:
            results.append(fail(label, f"cannot list the account's supported images: {err}"))
            continue
        results.append(_check_account(facts, label, images, pools))
    return results


def _check_account(facts: Facts, label: str, images: list[Any], pools: list[Any]) -> CheckResult:
    spec = facts.spec
    explicit = {p.node_agent_sku for p in pools if p.node_agent_sku != "auto"}
    known = {i.node_agent_sku_id for i in images}
    for sku in sorted(explicit - known):
        offered = ", ".join(agents_for(images, spec.os_type)) or "none"
        return fail(
            label, f"node agent SKU '{sku}' is not offered; {spec.os_type} agents: {offered}"
        )
    mp = spec.image.base.marketplace
    if mp is None:
        if explicit:
            return ok(label, f"{', '.join(sorted(explicit))} offered")
        agents = agents_for(images, spec.os_type)
        if len(agents) == 1:
            return ok(label, f"{agents[0]} (the only {spec.os_type} agent)")
        return fail(
            label,
            "a VHD base does not say which node agent it needs; set pools[].node_agent_sku to "
            f"one of: {', '.join(agents) or 'none offered'}",
        )
    match = match_marketplace(images, mp.publisher, mp.offer, mp.sku)
    urn = f"{mp.publisher}:{mp.offer}:{mp.sku}"
    if match is None:
        offered = ", ".join(
            f"{i.publisher}:{i.offer}:{i.sku}" for i in images if i.os_type == spec.os_type
        )
        return fail(
            label,
            f"Batch does not support {urn} (no node agent SKU for it); pick a supported base "
            f"image: {offered or 'none listed'}",
        )
    if explicit and explicit != {match.node_agent_sku_id}:
        return fail(
            label,
            f"{urn} runs node agent {match.node_agent_sku_id}, not "
            f"{', '.join(sorted(explicit))}; set node_agent_sku: auto",
        )
    end = match.end_of_life
    if end is not None:
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        if end <= now:
            return fail(
                label,
                f"Batch support for {urn} ({match.node_agent_sku_id}) ended on {end:%Y-%m-%d}; "
                "pick a newer base image",
            )
        if end - now <= SOON:
            return warn(
                label,
                f"Batch support for {urn} ({match.node_agent_sku_id}) ends on {end:%Y-%m-%d}; "
                "plan a move to a newer base image",
            )
    return ok(label, f"{urn} runs node agent {match.node_agent_sku_id}")
