"""Check: the subscription is readable and the resource providers the spec uses are registered."""

from __future__ import annotations

from typing import Any

from batchimage.azure.arm import text
from batchimage.azure.groups import read_provider
from batchimage.core.errors import AzureError, TransientAzureError
from batchimage.steps.gallery import builds_vm
from batchimage.steps.preflight.facts import Facts, storage_uses
from batchimage.steps.preflight.report import CheckResult, fail, ok, warn


def namespaces(spec: Any) -> list[str]:
    """The resource provider namespaces the spec's pipeline calls."""
    out = ["Microsoft.Compute"]
    if builds_vm(spec):
        out.append("Microsoft.Network")
    if storage_uses(spec) or spec.image.base.vhd_url is not None:
        out.append("Microsoft.Storage")
    if spec.pools:
        out.append("Microsoft.Batch")
    return out


def check_providers(facts: Facts) -> list[CheckResult]:
    """One result per namespace; an unregistered one names the exact command to register it."""
    clients = facts.clients
    sub = clients.subscription_id
    results = []
    for ns in namespaces(facts.spec):
        try:
            provider = read_provider(clients, ns)
        except TransientAzureError:
            raise
        except AzureError as err:
            if (err.code or "") == "SubscriptionNotFound":
                return [
                    fail(
                        "subscription",
                        f"subscription {sub} was not found or this identity cannot read it; "
                        "check `subscription` in the spec and the identity's role assignments",
                    )
                ]
            raise
        state = text(getattr(provider, "registration_state", "") or "NotRegistered")
        command = f"az provider register --namespace {ns} --subscription {sub}"
        if state.lower() == "registered":
            results.append(ok("providers", f"{ns} registered"))
        elif state.lower() == "registering":
            results.append(
                warn("providers", f"{ns} is still registering; it usually takes a few minutes")
            )
        else:
            results.append(
                fail("providers", f"{ns} is {state} in subscription {sub}; run: {command}")
            )
    return results
