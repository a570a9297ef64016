"""Is a pool where the spec's `wait_for` wants it, and if it went wrong, why - in words a
person can act on.

    health = assess(pool, counts, "idle")          # ready / settling / failed, with a summary
    pool = wait_healthy(ctx, pools, "quickstart", "idle", timeout_s=1800)
    verify(pool, image_id, node_agent)             # the portal's Properties check

Diagnoses: resize errors with their codes and what to do (quota: which quota and the
numbers; an allocation failure relaying the provider's error: what batchimage finds about
the VM size and the image, else another size or region), start task failures with the
tail of the start task's stdout/stderr, unusable nodes with their errors (as Batch reports
them) and what batchimage finds about the image and the node agent (`pool_causes`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from batchimage.azure.arm import text
from batchimage.azure.batch_pools import poll_or_raise
from batchimage.azure.batch_quota import (
    CoreQuota,
    QuotaKind,
    account_quotas,
    core_quotas,
    pools_in_use,
    quota_hint,
    read_sizes,
)
from batchimage.azure.pool_causes import BuiltImage, allocation_causes, unusable_causes
from batchimage.core.clip import tail_lines
from batchimage.core.errors import AzureError, PermanentAzureError

if TYPE_CHECKING:
    from batchimage.azure.batch_pools import BatchPools
    from batchimage.azure.calls import Calls

WaitFor = Literal["none", "steady", "idle"]
Verdict = Literal["ready", "settling", "failed"]

BAD = ("starttaskfailed", "unusable", "unknown")
SETTLING = (
    "creating",
    "starting",
    "waitingforstarttask",
    "rebooting",
    "reimaging",
    "deallocating",
    "upgradingos",
)
TAIL_LINES = 20
NODES_SHOWN = 3


@dataclass(frozen=True)
class Health:
    """A pool's condition against a `wait_for` goal."""

    verdict: Verdict
    summary: str
    allocation: str
    counts: dict[str, int] = field(default_factory=dict)
    resize_errors: tuple[Any, ...] = ()

    @property
    def ready(self) -> bool:
        return self.verdict == "ready"


def count_summary(counts: dict[str, int]) -> str:
    """`{"idle": 2, "starting": 1}` -> "2 idle, 1 starting" ("no nodes" when empty)."""
    parts = [f"{n} {state}" for state, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n]
    return ", ".join(parts) or "no nodes"


def assess(pool: Any, counts: dict[str, int], wait_for: WaitFor) -> Health:
    """Ready, still settling, or failed (resize errors; bad nodes when waiting for idle)."""
    allocation = text(pool.allocation_state).lower()
    errors = tuple(pool.resize_errors or ())
    nodes = count_summary(counts)
    summary = f"{allocation}: {nodes}"
    if text(pool.state).lower() == "deleting":
        return Health("failed", "the pool is being deleted", allocation, counts, errors)
    if wait_for == "none":
        return Health("ready", summary, allocation, counts, errors)
    if allocation != "steady":
        return Health("settling", summary, allocation, counts, errors)
    if errors:
        codes = ", ".join(text(e.code) for e in errors)
        return Health("failed", f"{summary}; resize errors: {codes}", allocation, counts, errors)
    if wait_for == "steady":
        return Health("ready", summary, allocation, counts, errors)
    if any(counts.get(state) for state in BAD):
        return Health("failed", summary, allocation, counts, errors)
    if any(counts.get(state) for state in SETTLING):
        return Health("settling", summary, allocation, counts, errors)
    return Health("ready", summary, allocation, counts, errors)


def health_of(pools: BatchPools, pool: Any, wait_for: WaitFor) -> Health:
    """Assess a live pool (reads its node counts)."""
    counts = pools.node_counts(str(pool.id)) if wait_for != "none" else {}
    return assess(pool, counts, wait_for)


def wait_healthy(
    ctx: Calls,
    pools: BatchPools,
    pool_id: str,
    wait_for: WaitFor,
    *,
    timeout_s: float,
    image: BuiltImage | None = None,
    since: float | None = None,
) -> Any:
    """Wait until the pool reaches `wait_for`, saying node counts by state as they change;
    raises PermanentAzureError with a diagnosis (checking `image`, the image batchimage
    built for it) when it fails or times out. `since` (a `ctx.clock.monotonic()` time):
    when the pool was created or changed; its reads come at a fixed rate from then (no
    drift by the reads' own time)."""
    shown: list[str] = []
    latest: list[Any] = []

    def probe() -> Any:
        pool = pools.get(pool_id)
        if pool is None:
            raise PermanentAzureError(
                f"pool {pool_id} disappeared while batchimage waited for it (deleted by someone?)",
                code="PoolNotFound",
                status=404,
            )
        health = health_of(pools, pool, wait_for)
        latest[:] = [pool, health]
        if not shown or shown[-1] != health.summary:
            shown.append(health.summary)
            ctx.say(f"pool {pool_id}: {health.summary}", counts=health.counts)
        if health.verdict == "failed":
            raise diagnose(ctx, pools, pool, health, image)
        return pool if health.ready else None

    def timed_out() -> PermanentAzureError:
        where = latest[1].summary if latest else "unknown"
        extra = ""
        if latest and latest[1].counts.get("waitingforstarttask"):
            extra = "; start tasks are still running (a long start task needs a longer timeout)"
        return PermanentAzureError(
            f"pool {pool_id} was not {wait_for} after {timeout_s:.0f} s ({where}){extra}; raise "
            "timeouts.pool_s or wait_for: steady, then run apply again",
            code="PoolWaitTimedOut",
        )

    return poll_or_raise(
        ctx,
        probe,
        f"pool {pool_id} to be {wait_for}",
        timeout_s=timeout_s,
        default_s=5,
        error=timed_out,
        phase_from=since,
    )


def verify(pool: Any, image_id: str, node_agent: str) -> None:
    """The pool reports the expected image id and node agent SKU (else PermanentAzureError)."""
    vmc = pool.virtual_machine_configuration
    ref = getattr(vmc, "image_reference", None)
    got_image = str(getattr(ref, "virtual_machine_image_id", "") or "")
    got_agent = str(getattr(vmc, "node_agent_sku_id", "") or "")
    wrong = []
    if got_image.lower() != image_id.lower():
        wrong.append(f"image {got_image or '(none)'} (expected {image_id})")
    if got_agent.lower() != node_agent.lower():
        wrong.append(f"node agent SKU {got_agent or '(none)'} (expected {node_agent})")
    if wrong:
        raise PermanentAzureError(
            f"pool {pool.id} reports {' and '.join(wrong)}", code="PoolVerificationFailed"
        )


# -- diagnosis ---------------------------------------------------------------------------


def diagnose(
    ctx: Calls,
    pools: BatchPools,
    pool: Any,
    health: Health,
    image: BuiltImage | None = None,
) -> PermanentAzureError:
    """The failure of a pool, explained: resize errors, failed start tasks, unusable nodes."""
    pool_id = str(pool.id)
    parts = [f"pool {pool_id} failed ({health.summary})"]
    codes = []
    for error in health.resize_errors:
        codes.append(text(error.code))
        parts.append(explain_resize_error(ctx, pools, pool, error, image))
    if health.counts.get("starttaskfailed"):
        codes.append("StartTaskFailed")
        parts += start_task_failures(pools, pool_id)
    if health.counts.get("unusable"):
        codes.append("NodeUnusable")
        parts += unusable_nodes(ctx, pools, pool, image)
    if health.counts.get("unknown"):
        codes.append("NodeUnknown")
        parts.append("nodes in state unknown lost contact with Batch (network or NSG rules?)")
    return PermanentAzureError("\n".join(parts), code=codes[0] if codes else "PoolFailed")


def _values(error: Any) -> dict[str, str]:
    return {str(v.name): str(v.value or "") for v in (getattr(error, "error_values", None) or [])}


def explain_resize_error(
    ctx: Calls, pools: BatchPools, pool: Any, error: Any, image: BuiltImage | None = None
) -> str:
    """One resize error: its code and message, and what to do about it."""
    code = text(error.code)
    head = f"resize error {code}: {error.message}"
    values = _values(error)
    account = pools.account
    size = str(pool.vm_size)
    low = code.lower()
    if "quota" in low:
        return f"{head}\n  {_quota_advice(ctx, pools, pool, code)}"
    provider = _provider_message(values)
    if low == "allocationfailed" and provider and re.search(r"quota", provider, re.IGNORECASE):
        return (
            f"{head}\n  the subscription's quota is too small (user-subscription Batch "
            f"accounts use the subscription's vCPU quotas): {provider}\n  what to do: request "
            f"a quota increase (Azure portal > Subscriptions > Usage + quotas, region "
            f"{account.location}; see usage with `az vm list-usage --location "
            f"{account.location} --output table`), or lower the node counts, or pick a "
            "smaller vm_size"
        )
    if low == "allocationfailed":
        reason = values.get("Reason") or _provider_text(values) or "no reason given"
        causes = allocation_causes(ctx.clients, pools, pool, image) if provider and image else []
        if causes:
            return f"{head} ({reason})\n" + "\n".join(f"  {cause}" for cause in causes)
        return (
            f"{head} ({reason})\n  Azure could not allocate {size} nodes in "
            f"{account.location}: try another vm_size, another region (a Batch account "
            "there), fewer nodes, or run apply again later"
        )
    if low == "allocationtimedout":
        timeout = pool.resize_timeout
        return (
            f"{head}\n  allocation outlasted the resize timeout ({timeout}); raise "
            "resize_timeout_s or lower the node counts, then run apply again"
        )
    if low == "resizestopped":
        return f"{head}\n  someone stopped the resize before it reached its target; run apply again"
    extra = "; ".join(f"{k}: {v}" for k, v in values.items())
    return head + (f" ({extra})" if extra else "")


def _provider_error(values: dict[str, str]) -> tuple[str, str] | None:
    """The relayed provider error (`Provider Error Json`) as (code, message); the raw text
    as the message when it is not JSON; None when the resize error carries none."""
    raw = values.get("Provider Error Json")
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return "", raw
    error = doc.get("error", doc) if isinstance(doc, dict) else {}
    if not isinstance(error, dict):
        return "", raw
    return str(error.get("code") or ""), str(error.get("message") or raw)


def _provider_text(values: dict[str, str]) -> str | None:
    """The provider's error as `code: message` (None when the resize error has none)."""
    found = _provider_error(values)
    if found is None:
        return None
    code, message = found
    return f"{code}: {message}" if code else message


def _provider_message(values: dict[str, str]) -> str | None:
    found = _provider_error(values)
    return found[1] if found is not None else None


def pool_quota_error(
    ctx: Calls, pools: BatchPools, pool_id: str, err: AzureError
) -> PermanentAzureError:
    """A create refused with PoolQuotaReached, explained: the account's pool quota, the pools
    that fill it, and what to do (delete pools it no longer needs, or ask for more)."""
    account = pools.account
    try:
        quotas = account_quotas(ctx.clients, account.group, account.name)
        used = pools_in_use(pools.client)
    except AzureError:
        quotas, used = None, []
    limit = quotas.pools if quotas is not None else None
    names = ", ".join(u.id for u in used[:10])
    if len(used) > 10:
        names += f" and {len(used) - 10} more"
    have = f"it has {len(used)} pool(s): {names}" if used else "it is full"
    of = f" of {limit} pools" if limit is not None else ""
    return PermanentAzureError(
        f"cannot create pool {pool_id}: Batch account {account.name}'s pool quota{of} is "
        f"reached ({have}; Azure: {err.message})\n  what to do: delete pools the account no "
        f"longer needs (`az batch pool delete --pool-id <id> --account-name {account.name}`), "
        f"or {quota_hint(account.name, account.group)}",
        code=err.code or "PoolQuotaReached",
        status=err.status,
        operation=err.operation,
        request_id=err.request_id,
    )


def _quota_kind(code: str) -> QuotaKind:
    """Which Batch account quota a resize error code says ran out."""
    low = code.lower()
    if "lowpriority" in low or "spot" in low:
        return "spot"
    return "family" if "series" in low or "family" in low else "dedicated"


def _quota_advice(ctx: Calls, pools: BatchPools, pool: Any, code: str) -> str:
    """Which Batch account quota ran out, its size, what the other pools hold, what the pool
    asked for and got, and what to do: a quota increase, fewer nodes or a smaller size."""
    account = pools.account
    kind = _quota_kind(code)
    spot = kind == "spot"
    size = str(pool.vm_size)
    targets = (int(pool.target_dedicated_nodes or 0), int(pool.target_low_priority_nodes or 0))
    target = targets[1] if spot else targets[0]
    got = int((pool.current_low_priority_nodes if spot else pool.current_dedicated_nodes) or 0)
    quota, cores, problem = _quota_numbers(ctx, pools, pool, kind, targets)
    ask = f"pool {pool.id} asked for {target} x {size}"
    if cores:
        ask += f" ({cores} vCPUs each) = {target * cores} vCPUs"
    ask += f" and got {got} node(s)"
    if pool.enable_auto_scale:
        lever = "the autoscale formula's targets"
    else:
        lever = "pools[].spot_nodes" if spot else "pools[].dedicated_nodes"
    if quota is not None and cores:
        numbers = f"Batch account {account.name}'s {quota.text()}"
        lever += f" (at most {quota.free // cores} x {size} fit now)"
    else:
        what = {"spot": "low-priority (Spot)", "family": "VM family", "dedicated": "dedicated"}
        numbers = f"Batch account {account.name}'s {what[kind]} core quota is reached{problem}"
    other = " or a VM size of another family" if kind == "family" else ""
    return (
        f"{numbers}\n  {ask}\n  what to do: {quota_hint(account.name, account.group)}; or "
        f"lower {lever}, or pick a smaller vm_size{other}"
    )


def _quota_numbers(
    ctx: Calls, pools: BatchPools, pool: Any, kind: QuotaKind, targets: tuple[int, int]
) -> tuple[CoreQuota | None, int | None, str]:
    """The quota of `kind` as the pool meets it now, the VM size's vCPUs, and why the
    numbers are missing (empty when they are not)."""
    account = pools.account
    try:
        quotas = account_quotas(ctx.clients, account.group, account.name)
        sizes = read_sizes(ctx.clients, account.location)
        used = pools_in_use(pools.client)
    except AzureError as err:  # the numbers are advice: say the rest without them
        return None, None, f" (could not read the numbers: {err.code or err.message})"
    size = sizes.get(str(pool.vm_size).lower())
    if quotas is None or size is None:
        return None, None if size is None else size.cores, ""
    found = core_quotas(quotas, sizes, used, [str(pool.id)], str(pool.vm_size), *targets)
    return next((q for q in found if q.kind == kind), None), size.cores, ""


def _tail(content: str | None, lines: int = TAIL_LINES) -> str:
    kept = tail_lines(content, lines)
    if not kept:
        return "    (empty)"
    return "\n".join(f"    | {line}" for line in kept)


def start_task_failures(pools: BatchPools, pool_id: str) -> list[str]:
    """For a few nodes whose start task failed: exit code, failure, stdout/stderr tails."""
    nodes = pools.nodes(pool_id, "starttaskfailed")
    out = [
        f"{len(nodes)} node(s) failed their start task (showing {min(len(nodes), NODES_SHOWN)}):"
    ]
    for node in nodes[:NODES_SHOWN]:
        info = node.start_task_info
        exit_code = getattr(info, "exit_code", None)
        failure = getattr(info, "failure_info", None)
        retries = getattr(info, "retry_count", None) or 0
        line = f"  node {node.id}: start task exit code {exit_code}"
        if failure is not None:
            line += f" ({text(failure.code)}: {failure.message})"
        if retries:
            line += f", after {retries} retr{'y' if retries == 1 else 'ies'}"
        out.append(line)
        for name in ("stderr", "stdout"):
            content = pools.node_file(pool_id, str(node.id), f"startup/{name}.txt")
            out.append(f"  startup/{name}.txt (last {TAIL_LINES} lines):\n{_tail(content)}")
    out.append(
        "  fix the start task (command line, resource files) in the spec, or the image it "
        "relies on, then run apply again"
    )
    return out


def unusable_nodes(
    ctx: Calls, pools: BatchPools, pool: Any, image: BuiltImage | None = None
) -> list[str]:
    """For a few unusable nodes: their errors as Batch reports them; for nodes without
    errors (Batch cannot communicate with them), what batchimage finds about the image."""
    pool_id = str(pool.id)
    nodes = pools.nodes(pool_id, "unusable")
    out = [f"{len(nodes)} node(s) are unusable (showing {min(len(nodes), NODES_SHOWN)}):"]
    silent = 0
    for node in nodes[:NODES_SHOWN]:
        errors = list(node.errors or [])
        if not errors:
            silent += 1
            out.append(
                f"  node {node.id}: no node errors (Batch cannot communicate with the node's "
                "VM: its node agent never reported)"
            )
        for error in errors:
            values = "; ".join(
                f"{d.name}: {d.value}" for d in (getattr(error, "error_details", None) or [])
            )
            out.append(
                f"  node {node.id}: {text(error.code)}: {error.message}"
                + (f" ({values})" if values else "")
            )
    if silent and image is not None:
        out.append("  what batchimage finds:")
        out += [f"  - {cause}" for cause in unusable_causes(ctx.clients, pools, pool, image)]
    elif silent:
        out.append(
            "  likely causes: an image that is not properly prepared (not generalized, VM "
            "extensions installed), a node agent SKU that does not align with the image, or "
            "a network that keeps Batch from its nodes"
        )
    return out
