"""Step `pool.<id>.retire`: finish a rollout - the newest pool (step `pool.<id>`, after its
smoke test) is the active one; older pools this pipeline made for the spec pool are
deleted, each once its running tasks have finished (up to `timeouts.pool_s`).

It runs only after the new pool is healthy, so a failed new pool leaves the old one
serving, and this step's recorded `active_pool_id` keeps naming it. Pools someone else
created are never deleted (they are listed in `kept`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from batchimage.azure.batch_pools import BatchPools, find_account, poll_or_raise
from batchimage.core.errors import PermanentAzureError
from batchimage.spec import Pool
from batchimage.steps.base import RunContext, Step, StepInputs
from batchimage.steps.create_pool import CreatePool
from batchimage.steps.pool_common import DriftOutputs, account_group, owned_by


class RetireOutputs(DriftOutputs):
    """The pool that serves the spec pool now, and old pools kept (not ours to delete)."""

    active_pool_id: str
    kept: tuple[str, ...] = ()


class RetireInputs(StepInputs):
    """Nothing hashed (what it deletes follows from the pool step's outputs); read: the
    spec pool, its Batch account's group, how long old pools drain and deletes take."""

    pool: Pool = Field(exclude=True)
    group: str = Field(exclude=True)
    drain_timeout_s: int = Field(exclude=True)
    delete_timeout_s: int = Field(exclude=True)


class RetirePool(Step[RetireOutputs]):
    """Delete the spec pool's older generations once the newest one is ready."""

    given: RetireInputs

    kind = "retire_pool"

    def __init__(self, spec: Any, pool: Any, pool_step: CreatePool, after: Step[Any]) -> None:
        """`after`: the last step the new pool must pass (its smoke test, or the pool step)."""
        self.given = RetireInputs(
            pool=pool,
            group=account_group(spec, pool),
            drain_timeout_s=spec.timeouts.pool_s,
            delete_timeout_s=spec.timeouts.delete_s,
        )
        self.key = f"pool.{pool.id}.retire"
        self.pool_step = pool_step
        self.depends_on = (pool_step,) if after is pool_step else (pool_step, after)

    def describe(self) -> str:
        return f"retire old generations of pool {self.given.pool.id}"

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        """A blue/green rollout of the pool: the pool serving now is retired after it."""
        if changing.get(self.pool_step.key) != "replace" or self.given.pool.rollout != "blue_green":
            return None
        active = str((recorded or {}).get("active_pool_id") or self.given.pool.id)
        return (
            "delete",
            f"will delete pool {active} once the new pool is {self.given.pool.wait_for}",
        )

    def _old(self, ctx: RunContext) -> tuple[BatchPools, str, list[Any], list[str]]:
        account = find_account(ctx.clients, self.given.group, self.given.pool.batch_account.name)
        pools = BatchPools(ctx.clients, account)
        active = ctx.output(self.pool_step).pool_id
        family = [p for p in pools.family(self.given.pool.id, ctx.pipeline) if str(p.id) != active]
        ours = [p for p in family if owned_by(ctx, p)]
        kept = sorted(str(p.id) for p in family if not owned_by(ctx, p))
        return pools, active, ours, kept

    def check(self, ctx: RunContext) -> RetireOutputs | None:
        _, active, old, kept = self._old(ctx)
        if not old:
            return RetireOutputs(
                active_pool_id=active, kept=tuple(kept), observed_fingerprint=ctx.fingerprint
            )
        names = ", ".join(str(p.id) for p in old)
        return RetireOutputs(
            active_pool_id=active,
            kept=tuple(kept),
            drift=f"pool {active} serves now; apply will delete the old pool(s) {names} once "
            "their running tasks finish",
            drift_action="delete",
        )

    def apply(self, ctx: RunContext) -> RetireOutputs | None:
        pools, active, old, kept = self._old(ctx)
        for pool in old:
            pool_id = str(pool.id)
            self._drain(ctx, pools, pool_id)
            ctx.say(f"retiring pool {pool_id} (pool {active} serves now)")
            pools.delete(ctx, pool_id, timeout_s=self.given.delete_timeout_s)
        for pool_id in kept:
            ctx.say(f"pool {pool_id} was not created by batchimage; it is left as it is")
        return None

    def _drain(self, ctx: RunContext, pools: BatchPools, pool_id: str) -> None:
        """Wait until no node of the pool runs a task (up to the drain timeout)."""

        def idle() -> bool | None:
            return True if not pools.node_counts(pool_id).get("running") else None

        poll_or_raise(
            ctx,
            idle,
            f"tasks on pool {pool_id} to finish",
            timeout_s=self.given.drain_timeout_s,
            default_s=30,
            error=lambda: PermanentAzureError(
                f"old pool {pool_id} still runs tasks after {self.given.drain_timeout_s} s; it "
                "keeps serving beside the new pool. Run apply again later (or delete it yourself)",
                code="PoolStillBusy",
            ),
        )
