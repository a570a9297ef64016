"""Check: the credential gets tokens for Azure Resource Manager (and Batch, with pools)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from batchimage.azure.signin import why_no_token
from batchimage.core import threads
from batchimage.steps.preflight.facts import Facts
from batchimage.steps.preflight.report import CheckResult, fail, ok

SIGN_IN = (
    "sign in with `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
    "(a service principal), or run where a managed identity is available"
)


def check_credentials(facts: Facts) -> list[CheckResult]:
    """Get one token per audience (concurrently); the first failure, in the audiences'
    order, says in one line what the credential tried."""
    clients = facts.clients
    audiences = [("Azure Resource Manager", clients.profile.arm_scope)]
    if facts.spec.pools:
        audiences.append(("Azure Batch", clients.profile.batch_scope))

    def token(scope: str) -> Exception | None:
        try:
            clients.credential.get_token(scope)
        except Exception as exc:  # azure.identity raises several kinds; all mean "no token"
            return exc
        return None

    with ThreadPoolExecutor(len(audiences), initializer=threads.block_signals) as pool:
        errors = list(pool.map(token, [scope for _, scope in audiences]))
    results = []
    for (label, _), exc in zip(audiences, errors, strict=True):
        if exc is not None:
            why = why_no_token(exc, clients.credential).rstrip(".")
            results.append(fail("credentials", f"no token for {label}: {why}. Next: {SIGN_IN}"))
            return results
        results.append(ok("credentials", f"token for {label} obtained"))
    return results
