"""Step `pool.<id>`: a Batch pool on the captured gallery image version, as the spec says,
reaching its `wait_for` state and verified (image id and node agent SKU).

- Same configuration -> adopt (no write). Updatable differences (start task, metadata,
  autoscale formula, target counts) -> update in place, stopping a pending resize first.
- Differences only a new pool can take (image, VM size, node agent, network, mounts, task
  slots, display name) -> per `rollout`: `recreate` deletes the pool and creates it again;
  `blue_green` creates `<id>-<version-suffix>` beside the old one, which step
  `pool.<id>.retire` deletes only after the new one is healthy (and its smoke test passed).
- `check` reports drift (resized, start task changed, unhealthy, ...) for `plan`.
- A pool someone else created is adopted and updated, never deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from batchimage.azure.arm import text
from batchimage.azure.batch_pools import (
    POOL_KIND,
    BatchPools,
    find_account,
    pool_resource_id,
)
from batchimage.azure.ids import parse_id
from batchimage.azure.pool_config import config_of, start_task
from batchimage.azure.pool_health import pool_quota_error, verify, wait_healthy
from batchimage.core.errors import PermanentAzureError
from batchimage.core.ownership import Marks
from batchimage.core.refs import ResourceRef
from batchimage.spec import Pool
from batchimage.steps.base import RunContext, Step, StepInputs
from batchimage.steps.pool_common import (
    DriftAction,
    DriftOutputs,
    Observed,
    account_group,
    built_image,
    generalizing,
    kept_metadata,
    observe,
    owned_by,
    pool_image,
)
from batchimage.steps.pool_rules import describe, diff, resize_timeout_s

SIZING = {"autoscale", "dedicated", "spot"}


class PoolOutputs(DriftOutputs):
    """The pool this step converged: its id (the newest generation under blue_green)."""

    pool_id: str
    account: str
    account_endpoint: str
    image_id: str
    image_version: str
    node_agent_sku: str
    vm_size: str


class PoolInputs(StepInputs):
    """The spec pool, the spec's tags (their parts hashed: see `CreatePool.inputs`); read,
    not hashed: the Batch account's group, how the image was generalized (for a failed
    pool's diagnosis), the time limits."""

    pool: Pool = Field(exclude=True)
    spec_tags: dict[str, str] = Field(exclude=True)
    group: str = Field(exclude=True)
    generalized_with: str | None = Field(exclude=True)
    custom_command: bool = Field(exclude=True)
    wait_timeout_s: int = Field(exclude=True)
    delete_timeout_s: int = Field(exclude=True)


class CreatePool(Step[PoolOutputs]):
    """One spec pool on the image: created, updated in place or rolled out."""

    given: PoolInputs

    kind = "create_pool"
    shown = ("pool_id", "account", "image_version", "node_agent_sku", "vm_size")

    def __init__(self, spec: Any, pool: Any, version_step: Step[Any], base_step: Step[Any]):
        command, custom = generalizing(spec)
        self.given = PoolInputs(
            pool=pool,
            spec_tags=dict(spec.tags),
            group=account_group(spec, pool),
            generalized_with=command,
            custom_command=custom,
            wait_timeout_s=max(spec.timeouts.pool_s, resize_timeout_s(pool) + 900),
            delete_timeout_s=spec.timeouts.delete_s,
        )
        self.key = f"pool.{pool.id}"
        self.version_step = version_step
        self.base_step = base_step
        self.depends_on = (version_step, base_step)

    def inputs(self) -> dict[str, Any]:
        p = self.given.pool
        return {
            "batch_account": p.batch_account,
            "vm_size": p.vm_size,
            "node_agent_sku": p.node_agent_sku,
            "sizing": [p.dedicated_nodes, p.spot_nodes, p.autoscale, p.resize_timeout_s],
            "task_slots_per_node": p.task_slots_per_node,
            "start_task": p.start_task,
            "network": p.network,
            "mounts": p.mounts,
            "metadata": [p.display_name, p.tags, p.metadata, self.given.spec_tags],
            "wait_for": p.wait_for,
            "rollout": p.rollout,
        }

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        """A new image version rolls the pool out (the spec's `rollout`)."""
        if changing.get(self.version_step.key) not in ("create", "replace"):
            return None
        old = str((recorded or {}).get("pool_id") or self.given.pool.id)
        if self.given.pool.rollout == "recreate":
            return "replace", (
                f"recreate onto the new image version: apply will delete pool {old} and "
                "create it again"
            )
        smoke = " and passes its smoke test" if self.given.pool.smoke_test else ""
        return "replace", (
            f"blue/green rollout onto the new image version: apply will create a new pool "
            f"beside {old}, wait until it is {self.given.pool.wait_for}{smoke}, then retire {old}"
        )

    def describe(self) -> str:
        p = self.given.pool
        size = (
            f"autoscale every {p.autoscale.interval_min} min"
            if p.autoscale
            else f"{p.dedicated_nodes or 0} dedicated + {p.spot_nodes or 0} Spot"
        )
        return f"Batch pool {p.id} in {p.batch_account.name} ({p.vm_size}, {size})"

    # -- observing -----------------------------------------------------------------------

    def _observe(self, ctx: RunContext) -> Observed:
        image = pool_image(ctx, self.version_step, self.base_step)
        return observe(
            ctx, self.given.pool, image, group=self.given.group, tags=self.given.spec_tags
        )

    def absent(self, ctx: RunContext) -> bool:
        """No live pool stands for the spec pool (its check finds no family either)."""
        account = find_account(ctx.clients, self.given.group, self.given.pool.batch_account.name)
        family = BatchPools(ctx.clients, account).family(self.given.pool.id, ctx.pipeline)
        return not [p for p in family if text(p.state).lower() != "deleting"]

    def check(self, ctx: RunContext) -> PoolOutputs | None:
        seen = self._observe(ctx)
        if not seen.family:
            return None
        target = seen.target
        if target is None:
            return self._outputs(ctx, seen, seen.live, self._replace_text(ctx, seen), "replace")
        if seen.changes:
            note = f"pool {target.id}: {describe(seen.changes)}{self._evaluated(seen)}"
            return self._outputs(ctx, seen, target, f"{note}; apply will update it in place")
        health = seen.health(self.given.pool.wait_for)
        if health is not None and not health.ready:
            if health.verdict == "failed":
                note = (
                    f"pool {target.id} failed ({health.summary}); apply will retry and report why"
                )
            else:
                note = (
                    f"pool {target.id} is not {self.given.pool.wait_for} yet ({health.summary}); "
                )
                note += "apply will wait for it"
            return self._outputs(ctx, seen, target, note)
        return self._outputs(ctx, seen, target)

    def _outputs(
        self,
        ctx: RunContext,
        seen: Observed,
        live: Any,
        drift: str | None = None,
        action: DriftAction = "update",
    ) -> PoolOutputs:
        account = seen.pools.account
        rid = pool_resource_id(ctx.clients, account, str(live.id))
        vmc = live.virtual_machine_configuration
        return PoolOutputs(
            pool_id=str(live.id),
            account=account.name,
            account_endpoint=account.endpoint,
            image_id=str(vmc.image_reference.virtual_machine_image_id or ""),
            image_version=seen.image.version,
            node_agent_sku=str(vmc.node_agent_sku_id),
            vm_size=str(live.vm_size),
            resources=(ResourceRef(id=rid, kind=POOL_KIND, created_by_run=owned_by(ctx, live)),),
            observed_fingerprint=None if drift else ctx.fingerprint,
            drift=drift,
            drift_action=action if drift else None,
        )

    def _replace_text(self, ctx: RunContext, seen: Observed) -> str:
        live = seen.live
        assert live is not None
        why = describe([c for c in seen.changes if c.immutable])
        new_id = seen.new_pool_id()
        if self.given.pool.rollout == "recreate":
            old = next((p for p in seen.family if str(p.id).lower() == new_id.lower()), None)
            if old is None:
                return f"pool {live.id}: {why}; recreate: apply will create pool {new_id}"
            if owned_by(ctx, old) is None:
                return (
                    f"pool {old.id}: {why}; it was not created by batchimage, so recreate "
                    "will not delete it: apply will fail"
                )
            return f"pool {old.id}: {why}; recreate: apply will delete it and create it again"
        smoke = " and passes its smoke test" if self.given.pool.smoke_test else ""
        return (
            f"pool {live.id}: {why}; blue_green: apply will create pool {new_id}, wait until "
            f"it is {self.given.pool.wait_for}{smoke}, then retire {live.id}"
        )

    def _evaluated(self, seen: Observed) -> str:
        """What a changed autoscale formula gives on the pool now (where Batch can say)."""
        target = seen.target
        formula = self.given.pool.autoscale.formula if self.given.pool.autoscale else None
        changed = any(c.name == "autoscale" for c in seen.changes)
        if not changed or formula is None or target is None or not target.enable_auto_scale:
            return ""
        run = seen.pools.evaluate(str(target.id), formula)
        if run.error is not None:
            return f" (the new formula fails: {_autoscale_error(run.error)})"
        return f" (the new formula gives {run.results})"

    # -- applying ------------------------------------------------------------------------

    def apply(self, ctx: RunContext) -> PoolOutputs | None:
        seen = self._observe(ctx)
        if seen.target is not None:
            pool_id = str(seen.target.id)
            self._converge(ctx, seen, seen.target)
        else:
            pool_id = self._create(ctx, seen)
        since = ctx.clock.monotonic()  # Azure's answer came: the pool's clock runs from here
        pools = seen.pools
        if self.given.pool.wait_for != "none":
            live = wait_healthy(
                ctx,
                pools,
                pool_id,
                self.given.pool.wait_for,
                timeout_s=self.given.wait_timeout_s,
                image=built_image(
                    seen.image, self.given.generalized_with, self.given.custom_command
                ),
                since=since,
            )
        else:
            live = pools.get(pool_id)
        if live is not None:
            verify(live, seen.desired.image_id, seen.desired.node_agent)
            ctx.say(
                f"pool {pool_id} runs image {seen.image.version} with node agent "
                f"{seen.desired.node_agent}"
            )
        return None

    def _create(self, ctx: RunContext, seen: Observed) -> str:
        pools = seen.pools
        new_id = seen.new_pool_id()
        if self.given.pool.rollout == "recreate" and new_id.lower() in seen.taken:
            old = next((p for p in seen.family if str(p.id).lower() == new_id.lower()), None)
            if old is not None and owned_by(ctx, old) is None:
                raise PermanentAzureError(
                    f"pool {old.id} differs from the spec ({describe(seen.changes)}) and was not "
                    "created by batchimage, so recreate will not delete it; delete it yourself, "
                    "or use rollout: blue_green or another pool id",
                    code="PoolNotCreatedByBatchimage",
                )
            ctx.say(f"recreate: deleting pool {new_id} ({describe(seen.changes) or 'deleting'})")
            pools.delete(ctx, new_id, timeout_s=self.given.delete_timeout_s)
        options = seen.options(
            new_id, lambda ref: ctx.secret(ref).get_secret_value(), {Marks.Pool.RUN: ctx.run_id}
        )
        ctx.say(f"creating pool {new_id} on image {seen.image.version}")
        try:
            pools.create(options)
        except PermanentAzureError as err:
            if err.code == "PoolQuotaReached":
                raise pool_quota_error(ctx, pools, new_id, err) from err
            raise
        return new_id

    def _converge(self, ctx: RunContext, seen: Observed, live: Any) -> None:
        """Update a pool in place: start task and metadata, then its size."""
        pools, pool_id = seen.pools, str(live.id)
        changes = diff(config_of(live), seen.want)
        names = {c.name for c in changes}
        if changes:
            ctx.say(f"updating pool {pool_id} in place: {describe(changes)}")
        if names & {"start_task", "metadata"}:
            meta = {**seen.desired.metadata, **kept_metadata(live)}
            pools.replace_properties(
                pool_id,
                start_task=start_task(self.given.pool.start_task),
                application_packages=list(live.application_package_references or []),
                metadata=meta,
            )
        retry = not (names & SIZING) and bool(live.resize_errors)
        if names & SIZING or retry:
            if retry:
                ctx.say(f"pool {pool_id} had resize errors; asking Batch to allocate again")
            self._size(ctx, pools, live)

    def _size(self, ctx: RunContext, pools: BatchPools, live: Any) -> None:
        pool_id = str(live.id)
        autoscale = self.given.pool.autoscale
        if autoscale is not None:
            if live.enable_auto_scale:
                run = pools.evaluate(pool_id, autoscale.formula)
                if run.error is not None:
                    raise PermanentAzureError(
                        f"the autoscale formula of pool {pool_id} fails on the pool: "
                        f"{_autoscale_error(run.error)}; fix pools[].autoscale.formula",
                        code=text(run.error.code) or None,  # Azure's code only, never one of ours
                    )
            self._settle(ctx, pools, pool_id)
            pools.enable_autoscale(pool_id, autoscale.formula, autoscale.interval_min)
            return
        if live.enable_auto_scale:
            pools.disable_autoscale(pool_id)
        self._settle(ctx, pools, pool_id)
        pools.resize(
            ctx,
            pool_id,
            self.given.pool.dedicated_nodes or 0,
            self.given.pool.spot_nodes or 0,
            resize_timeout_s(self.given.pool),
        )

    def _settle(self, ctx: RunContext, pools: BatchPools, pool_id: str) -> None:
        """Stop a pending resize and wait until the pool's allocation is steady."""
        live = pools.get(pool_id)
        state = text(getattr(live, "allocation_state", "")).lower()
        if state == "resizing":
            ctx.say(f"stopping the pending resize of pool {pool_id} first")
            pools.stop_resize(ctx, pool_id)
        if state in ("resizing", "stopping"):

            def steady() -> bool | None:
                found = pools.get(pool_id)
                return True if found is None or text(found.allocation_state) == "steady" else None

            ctx.poll(
                steady, f"pool {pool_id} to stop resizing", timeout_s=self.given.wait_timeout_s
            )

    # -- destroying ----------------------------------------------------------------------

    @classmethod
    def destroy(cls, ctx: RunContext, outputs: PoolOutputs) -> None:
        """Delete the pools this pipeline created (every generation; gone ones are fine)."""
        accounts: dict[str, BatchPools] = {}
        for ref in outputs.created():
            found = _pool_of(ctx, ref, accounts)
            if found is not None:
                pools, pool_id = found
                result = pools.delete(ctx, pool_id, timeout_s=_delete_timeout(ctx))
                ctx.say(f"pool {pool_id} {result}")

    @classmethod
    def exists(cls, ctx: RunContext, ref: ResourceRef) -> bool:
        found = _pool_of(ctx, ref, {})
        return found is None or found[0].get(found[1]) is not None


def _pool_of(
    ctx: RunContext, ref: ResourceRef, accounts: dict[str, BatchPools]
) -> tuple[BatchPools, str] | None:
    """The account's pools and the pool id a pool ref names (None for another id shape);
    `accounts` caches the accounts found."""
    parts = parse_id(ref.id)
    names = parts.get("names", "").split("/")
    if len(names) != 2:
        return None
    account_name, pool_id = names
    if account_name not in accounts:
        account = find_account(ctx.clients, parts.get("group", ""), account_name)
        accounts[account_name] = BatchPools(ctx.clients, account)
    return accounts[account_name], pool_id


def _delete_timeout(ctx: RunContext) -> float:
    return float(ctx.delete_timeout_s or 1800)


def _autoscale_error(error: Any) -> str:
    values = ", ".join(f"{v.name} {v.value}" for v in (error.error_values or []))
    return f"{text(error.code)}: {error.message}" + (f" ({values})" if values else "")
