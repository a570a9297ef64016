"""Thin calls over the Batch data plane for one account's pools (azure-batch 15.x client,
Entra ID credentials), every SDK error mapped to ours, naming the operation.

    pools = BatchPools(clients, account)             # account: node_agents.BatchAccount
    pools.get("quickstart")                          # BatchPool | None
    pools.family("quickstart", "demo")               # the pools batchimage manages for it
    pools.create(options); pools.resize(...); pools.delete(ctx, "quickstart")

Long-running Batch operations (resize, stop resize, delete) are started here and watched
by the caller's own polls (pool state), so waits show progress and stop on Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from azure.batch import models as bm
from azure.core.exceptions import AzureError as SdkAzureError

from batchimage.azure.arm import get_or_none, poll_interval
from batchimage.azure.errors import is_not_found, translate
from batchimage.azure.node_agents import BatchAccount, batch_account, supported_images
from batchimage.core.errors import AzureError, PermanentAzureError
from batchimage.core.ownership import Marks

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchimage.azure.calls import Calls
    from batchimage.azure.clients import AzureClients
    from batchimage.azure.node_agents import SupportedImage

POOL_KIND = "Microsoft.Batch/batchAccounts/pools"
GONE = "gone"
T = TypeVar("T")


@contextmanager
def batch_call(operation: str) -> Iterator[None]:
    """Like `azure_call`, for the Batch data plane: the error's detail values (property name,
    reason, formula line and column, ...) join its message; request id/time lines leave it."""
    try:
        yield
    except SdkAzureError as exc:
        raise with_details(translate(exc, operation), exc) from exc


def with_details(err: AzureError, exc: BaseException) -> AzureError:
    """`err` with the Batch error's detail values in its message."""
    model = getattr(exc, "model", None)
    values = getattr(model, "error_values", None) or []
    details = "; ".join(f"{v.key}: {v.value}" for v in values if getattr(v, "key", None))
    lines = [
        line
        for line in err.message.splitlines()
        if not line.startswith(("RequestId:", "Time:")) and line.strip()
    ]
    message = " ".join(lines) + (f" ({details})" if details else "")
    if message == err.message:
        return err
    return type(err)(
        message,
        code=err.code,
        status=err.status,
        operation=err.operation,
        request_id=err.request_id,
        retry_after=err.retry_after,
        correlation_id=err.correlation_id,
    )


POOL_ACCOUNT_FIX = "create it (user subscription mode) or fix pools[].batch_account"


def find_account(
    clients: AzureClients, group: str, name: str, fix: str = POOL_ACCOUNT_FIX
) -> BatchAccount:
    """The Batch account a pool lives in; a clear error, ending in `fix`, when it does not
    exist."""
    account = batch_account(clients, group, name)
    if account is None:
        raise PermanentAzureError(
            f"Batch account {name} does not exist in resource group {group}; {fix}",
            code="ResourceNotFound",
            status=404,
        )
    return account


def pool_resource_id(clients: AzureClients, account: BatchAccount, pool_id: str) -> str:
    """The ARM id of a pool (how state records it)."""
    return (
        f"/subscriptions/{clients.subscription_id}/resourceGroups/{account.group}/providers/"
        f"Microsoft.Batch/batchAccounts/{account.name}/pools/{pool_id}"
    )


def metadata_of(pool: Any) -> dict[str, str]:
    """A pool's metadata as a dict."""
    return {m.name: m.value or "" for m in (getattr(pool, "metadata", None) or [])}


class BatchPools:
    """The pools of one Batch account."""

    def __init__(self, clients: AzureClients, account: BatchAccount) -> None:
        self.clients = clients
        self.account = account
        self.client: BatchClient = clients.batch(account.endpoint)

    # -- reading -------------------------------------------------------------------------

    def supported_images(self) -> list[SupportedImage]:
        return supported_images(self.clients, self.account.endpoint)

    def get(self, pool_id: str) -> bm.BatchPool | None:
        """The pool, or None when it does not exist."""
        return get_or_none(f"read pool {pool_id}", self.client.get_pool, pool_id)

    def family(self, base_id: str, pipeline: str) -> list[bm.BatchPool]:
        """The pools standing for spec pool `base_id`: `base_id` itself (whoever made it) and
        `<base_id>-*` pools this pipeline made for it (blue/green generations)."""
        with batch_call(f"list pools {base_id}*"):
            found = list(self.client.list_pools(filter=f"startswith(id,'{base_id}')"))
        out = []
        for pool in found:
            meta = metadata_of(pool)
            ours = (
                meta.get(Marks.Pool.PIPELINE) == pipeline and meta.get(Marks.Pool.POOL) == base_id
            )
            if str(pool.id).lower() == base_id.lower() or ours:
                out.append(pool)
        return out

    def node_counts(self, pool_id: str) -> dict[str, int]:
        """Nodes by state (dedicated and Spot together), only states with nodes."""
        with batch_call(f"count nodes of pool {pool_id}"):
            rows = list(self.client.list_pool_node_counts(filter=f"poolId eq '{pool_id}'"))
        counts: dict[str, int] = {}
        for row in rows:
            for part in (row.dedicated, row.low_priority):
                if part is None:
                    continue
                for name, value in part.as_dict().items():
                    if name != "total" and value:
                        counts[name.lower()] = counts.get(name.lower(), 0) + int(value)
        return counts

    def nodes(self, pool_id: str, state: str | None = None) -> list[bm.BatchNode]:
        """The pool's nodes (only those in `state` if given)."""
        flt = f"state eq '{state}'" if state else None
        with batch_call(f"list nodes of pool {pool_id}"):
            return list(self.client.list_nodes(pool_id, filter=flt))

    def node_file(self, pool_id: str, node_id: str, path: str) -> str | None:
        """The text of a node file (None when it does not exist)."""
        return _read(
            f"read {path} on node {node_id}",
            lambda: self.client.download_node_file(pool_id, node_id, path),
        )

    def evaluate(self, pool_id: str, formula: str) -> bm.AutoScaleRun:
        """What `formula` gives on the pool now (the pool must have autoscale enabled)."""
        with batch_call(f"evaluate autoscale formula on pool {pool_id}"):
            return self.client.evaluate_pool_auto_scale(
                pool_id, bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)
            )

    # -- writing -------------------------------------------------------------------------

    def create(self, options: bm.BatchPoolCreateOptions) -> None:
        with batch_call(f"create pool {options.id}"):
            self.client.create_pool(options)

    def set_metadata(self, pool_id: str, metadata: Mapping[str, str]) -> None:
        """Replace the pool's metadata, leaving the rest of it as it is."""
        options = bm.BatchPoolUpdateOptions(metadata=_items(metadata))
        with batch_call(f"update pool {pool_id}"):
            self.client.update_pool(pool_id, options)

    def replace_properties(
        self,
        pool_id: str,
        *,
        start_task: bm.BatchStartTask | None,
        application_packages: list[bm.BatchApplicationPackageReference],
        metadata: Mapping[str, str],
    ) -> None:
        """Replace start task, application packages and metadata (all three at once)."""
        options = bm.BatchPoolReplaceOptions(
            start_task=start_task,
            application_package_references=application_packages,
            metadata=_items(metadata),
        )
        with batch_call(f"update pool {pool_id}"):
            self.client.replace_pool_properties(pool_id, options)

    def resize(self, ctx: Calls, pool_id: str, dedicated: int, spot: int, timeout_s: int) -> None:
        """Start a resize to fixed targets (the caller waits on the pool's state)."""
        options = bm.BatchPoolResizeOptions(
            target_dedicated_nodes=dedicated,
            target_low_priority_nodes=spot,
            resize_timeout=timedelta(seconds=timeout_s),
        )
        with batch_call(f"resize pool {pool_id}"):
            self.client.begin_resize_pool(pool_id, options, polling_interval=sdk_interval(ctx))

    def stop_resize(self, ctx: Calls, pool_id: str) -> None:
        with batch_call(f"stop resizing pool {pool_id}"):
            self.client.begin_stop_pool_resize(pool_id, polling_interval=sdk_interval(ctx))

    def enable_autoscale(self, pool_id: str, formula: str, interval_min: int) -> None:
        options = bm.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula=formula,
            auto_scale_evaluation_interval=timedelta(minutes=interval_min),
        )
        with batch_call(f"enable autoscale on pool {pool_id}"):
            self.client.enable_pool_auto_scale(pool_id, options)

    def disable_autoscale(self, pool_id: str) -> None:
        with batch_call(f"disable autoscale on pool {pool_id}"):
            self.client.disable_pool_auto_scale(pool_id)

    def delete(self, ctx: Calls, pool_id: str, *, timeout_s: float | None = None) -> str:
        """Delete a pool and wait until it is gone: "deleted", or "gone" (already)."""
        try:
            self.client.begin_delete_pool(pool_id, polling_interval=sdk_interval(ctx))
        except SdkAzureError as exc:
            if is_not_found(exc):
                return GONE
            raise with_details(translate(exc, f"delete pool {pool_id}"), exc) from exc
        ctx.poll(
            lambda: True if self.get(pool_id) is None else None,
            f"pool {pool_id} to be deleted",
            interval_s=poll_interval(ctx, 5),
            timeout_s=timeout_s,
        )
        return "deleted"

    # -- jobs and tasks (smoke tests) ----------------------------------------------------

    def create_job(self, job_id: str, pool_id: str) -> None:
        job = bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=pool_id))
        with batch_call(f"create job {job_id}"):
            self.client.create_job(job)

    def create_task(self, job_id: str, task: bm.BatchTaskCreateOptions) -> None:
        with batch_call(f"create task {task.id} in job {job_id}"):
            self.client.create_task(job_id, task)

    def get_task(self, job_id: str, task_id: str) -> bm.BatchTask:
        with batch_call(f"read task {task_id} of job {job_id}"):
            return self.client.get_task(job_id, task_id)

    def task_file(self, job_id: str, task_id: str, path: str) -> str | None:
        return _read(
            f"read {path} of task {task_id}",
            lambda: self.client.download_task_file(job_id, task_id, path),
        )

    def job_exists(self, job_id: str) -> bool:
        return get_or_none(f"read job {job_id}", self.client.get_job, job_id) is not None

    def delete_job(self, ctx: Calls, job_id: str) -> None:
        """Delete a job and wait until it is gone (already gone is fine)."""
        try:
            self.client.begin_delete_job(job_id, polling_interval=sdk_interval(ctx))
        except SdkAzureError as exc:
            if is_not_found(exc):
                return
            raise translate(exc, f"delete job {job_id}") from exc
        ctx.poll(
            lambda: True if not self.job_exists(job_id) else None,
            f"job {job_id} to be deleted",
            interval_s=poll_interval(ctx, 5),
        )


def poll_or_raise(
    ctx: Calls,
    probe: Callable[[], T | None],
    what: str,
    *,
    timeout_s: float,
    default_s: float,
    error: Callable[[], PermanentAzureError],
    phase_from: float | None = None,
) -> T:
    """`ctx.poll` at the profile's interval (else `default_s`), at a fixed rate from
    `phase_from` when given (`Waiter.poll`); on timeout, raise `error()`."""
    interval = poll_interval(ctx, default_s)
    try:
        return ctx.poll(
            probe, what, interval_s=interval, timeout_s=timeout_s, phase_from=phase_from
        )
    except TimeoutError as exc:
        raise error() from exc


def sdk_interval(ctx: Calls) -> int:
    """Whole seconds between the SDK poller's own polls (it runs in a thread of its own;
    waits here watch the pool instead, at the profile's interval)."""
    return max(1, round(poll_interval(ctx, 5)))


def _read(operation: str, fetch: Any) -> str | None:
    try:
        chunks: Iterator[bytes] = fetch()
        return b"".join(chunks).decode("utf-8", errors="replace")
    except SdkAzureError as exc:
        if is_not_found(exc):
            return None
        raise translate(exc, operation) from exc


def _items(metadata: Mapping[str, str]) -> list[bm.BatchMetadataItem]:
    """Batch metadata items, in the mapping's order."""
    return [bm.BatchMetadataItem(name=k, value=v) for k, v in metadata.items()]
