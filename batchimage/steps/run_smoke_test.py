"""Step `pool.<id>.smoke`: the spec's smoke test passes on the pool step `pool.<id>` made
(one job, one task, exit code 0), before any old pool is retired.

A pass is marked on the pool itself (metadata `batchimage-smoke-test` = a hash of the
command line), so a re-apply does not run it again, a new pool (a new image) runs it
once, and a changed command line runs it again.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from batchimage.azure.batch_pools import BatchPools, find_account, metadata_of
from batchimage.azure.pool_smoke import run_smoke_test
from batchimage.core.hashing import short_hash
from batchimage.core.ownership import Marks
from batchimage.spec import Pool, SmokeTest
from batchimage.steps.base import RunContext, Step, StepInputs
from batchimage.steps.create_pool import CreatePool
from batchimage.steps.pool_common import DriftOutputs, account_group
from batchimage.steps.verbs import Verb


class SmokeOutputs(DriftOutputs):
    """The pool the smoke test passed on, and which test (hash of its command line)."""

    pool_id: str
    test: str


class SmokeInputs(StepInputs):
    """The spec pool's smoke test (hashed); read, not hashed: the pool, its Batch account's
    group."""

    smoke_test: SmokeTest
    pool: Pool = Field(exclude=True)
    group: str = Field(exclude=True)


class RunSmokeTest(Step[SmokeOutputs]):
    """The smoke test of one spec pool, on its newest pool."""

    given: SmokeInputs

    kind = "run_smoke_test"
    verb = Verb("run", "running", "ran", "read")  # a test changes nothing

    def __init__(self, spec: Any, pool: Any, pool_step: CreatePool) -> None:
        assert pool.smoke_test is not None
        self.given = SmokeInputs(
            smoke_test=pool.smoke_test, pool=pool, group=account_group(spec, pool)
        )
        self.key = f"pool.{pool.id}.smoke"
        self.pool_step = pool_step
        self.depends_on = (pool_step,)
        self.mark = short_hash(self.given.smoke_test.command_line)

    def describe(self) -> str:
        return f"smoke test on pool {self.given.pool.id}: {self.given.smoke_test.command_line}"

    def _pools(self, ctx: RunContext) -> BatchPools:
        account = find_account(ctx.clients, self.given.group, self.given.pool.batch_account.name)
        return BatchPools(ctx.clients, account)

    def check(self, ctx: RunContext) -> SmokeOutputs | None:
        pool_id = ctx.output(self.pool_step).pool_id
        live = self._pools(ctx).get(pool_id)
        if live is None:
            return None
        if metadata_of(live).get(Marks.Pool.SMOKE_TEST) == self.mark:
            return SmokeOutputs(
                pool_id=pool_id, test=self.mark, observed_fingerprint=ctx.fingerprint
            )
        return SmokeOutputs(
            pool_id=pool_id,
            test=self.mark,
            drift=f"the smoke test has not passed on pool {pool_id} yet; apply will run it",
            drift_action="create",
        )

    def apply(self, ctx: RunContext) -> SmokeOutputs | None:
        pool_id = ctx.output(self.pool_step).pool_id
        pools = self._pools(ctx)
        test = self.given.smoke_test
        run_smoke_test(ctx, pools, pool_id, test.command_line, timeout_s=test.timeout_s)
        live = pools.get(pool_id)
        if live is not None:
            meta = {**metadata_of(live), Marks.Pool.SMOKE_TEST: self.mark}
            pools.set_metadata(pool_id, meta)
        return None
