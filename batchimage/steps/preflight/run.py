"""Run every preflight check (credentials, then the regions and the rest concurrently: an
unknown region reports alone) into one Report."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from batchimage.core import threads
from batchimage.core.errors import AzureError, BatchImageError, TransientAzureError
from batchimage.core.redact import redact
from batchimage.steps.preflight.base_image import check_base_image
from batchimage.steps.preflight.batch import check_batch_accounts
from batchimage.steps.preflight.batch_quota import check_batch_quota
from batchimage.steps.preflight.credentials import check_credentials
from batchimage.steps.preflight.facts import Facts
from batchimage.steps.preflight.gallery import check_gallery
from batchimage.steps.preflight.node_agent import check_node_agents
from batchimage.steps.preflight.os_disk import check_os_disk
from batchimage.steps.preflight.permissions import check_permissions
from batchimage.steps.preflight.providers import check_providers
from batchimage.steps.preflight.quota import check_quota
from batchimage.steps.preflight.region import check_region
from batchimage.steps.preflight.report import CheckResult, Report, fail
from batchimage.steps.preflight.secrets import check_secrets
from batchimage.steps.preflight.storage import check_storage

if TYPE_CHECKING:
    from batchimage.steps.base import RunContext

Check = Callable[[Facts], list[CheckResult]]

CHECKS: list[tuple[str, Check]] = [
    ("secrets", check_secrets),
    ("providers", check_providers),
    ("storage", check_storage),
    ("batch accounts", check_batch_accounts),
    ("base image", check_base_image),
    ("os disk", check_os_disk),
    ("gallery", check_gallery),
    ("node agent", check_node_agents),
    ("quota", check_quota),
    ("batch quota", check_batch_quota),
    ("permissions", check_permissions),
]


def _guarded(name: str, check: Check, facts: Facts) -> list[CheckResult]:
    """A check whose Azure failure becomes its failed result (the others still run); a
    transient one leaves as it is, for the checks to run again (the engine retries)."""
    try:
        return check(facts)
    except TransientAzureError:
        raise
    except AzureError as err:
        from batchimage.azure.errors import next_action

        return [fail(name, f"{err}. Next: {next_action(err)}")]
    except BatchImageError as err:
        return [fail(name, redact(str(err)))]


def run_checks(
    ctx: RunContext,
    spec: Any,
    *,
    pinned_version: str | None = None,
    workers: int = 8,
    planning: bool = False,
) -> Report:
    """All checks for `spec`; none writes anything. A transient Azure failure in any
    check is raised (TransientAzureError), not reported: run them all again. `planning`:
    for `plan`, where the caller's own write access is a warning, not a failure."""
    facts = Facts(ctx, spec, pinned_version=pinned_version, planning=planning)
    report = Report(_guarded("credentials", check_credentials, facts))
    if report.failed:
        return report
    with ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="preflight", initializer=threads.block_signals
    ) as pool:
        region = pool.submit(_guarded, "region", check_region, facts)
        futures = [pool.submit(_guarded, name, check, facts) for name, check in CHECKS]
        report.results.extend(region.result())
        if report.failed:  # the other checks read the region: theirs would be false failures
            for future in futures:
                future.cancel()
            return report
        for future in futures:
            report.results.extend(future.result())
    return report
