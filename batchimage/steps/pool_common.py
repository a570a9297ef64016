"""What the pool steps share: outputs that can say how the live pool drifted from the spec,
the image a pool runs (the one accessor on the image pipeline's outputs), and the
observation of a spec pool's live pools with the decision apply will take.

    image = pool_image(ctx, version_step, base_step)   # version id, version, base OS/origin
    built = built_image(image, command, custom)        # + how it was generalized (diagnosis)
    seen = observe(ctx, spec_pool, image, group=..., tags=spec_tags)   # account, desired
    seen.target, seen.changes, seen.plan_text()        #   config, live pools
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from batchimage.azure.arm import text
from batchimage.azure.batch_pools import BatchPools, find_account, metadata_of
from batchimage.azure.pool_agent import ImageBase, resolve_node_agent
from batchimage.azure.pool_causes import BuiltImage
from batchimage.azure.pool_config import KEPT_META, Desired, PoolConfig, config_of, create_options
from batchimage.azure.pool_health import Health, health_of
from batchimage.core.hashing import short_hash
from batchimage.core.ownership import Marks
from batchimage.steps.base import Outputs, RunContext, Step
from batchimage.steps.gallery import trusted_launch_only
from batchimage.steps.generalize_vm import deprovision_command
from batchimage.steps.pool_rules import Difference, diff, immutable, resize_timeout_s

DriftAction = Literal["create", "update", "replace", "delete"]
MAX_POOL_ID = 64


class DriftOutputs(Outputs):
    """Outputs that may carry, for plan, how the live resource differs from the spec and
    what apply will do (`drift`, `drift_action`); neither is recorded nor hashed."""

    drift: str | None = Field(None, exclude=True)
    drift_action: DriftAction | None = Field(None, exclude=True)


@dataclass(frozen=True)
class PoolImage:
    """The image a pool runs: the gallery image version, what its base was, and the
    security type of its definition."""

    version_id: str
    version: str
    base: ImageBase
    security_type: str = "Standard"

    @property
    def pool_security(self) -> str:
        """What the pool's securityProfile.securityType must say ("" for no profile)."""
        return "trustedLaunch" if trusted_launch_only(self.security_type) else ""


def pool_image(ctx: RunContext, version_step: Step[Any], base_step: Step[Any]) -> PoolImage:
    """The captured image version (capture step outputs) and its base (resolve step)."""
    version = ctx.output(version_step)
    return PoolImage(
        version_id=str(version.version_id),
        version=str(version.version),
        base=ImageBase.of(ctx.output(base_step)),
        security_type=str(getattr(version, "security_type", None) or "Standard"),
    )


def generalizing(spec: Any) -> tuple[str | None, bool]:
    """How `spec`'s image is generalized: the command (None: a VHD registered as it is),
    and whether it is the spec's own."""
    built = bool(spec.image.builds_vm)
    command = deprovision_command(spec) if built else None
    return command, built and spec.image.generalize.command is not None


def built_image(image: PoolImage, generalized_with: str | None, custom: bool) -> BuiltImage:
    """The pool's image as its diagnosis checks it: version, base, how it was generalized
    (`generalizing`)."""
    return BuiltImage(
        version_id=image.version_id,
        base=image.base,
        generalized_with=generalized_with,
        custom_command=custom,
    )


def account_group(spec: Any, pool: Any) -> str:
    """The resource group of a pool's Batch account."""
    return str(pool.batch_account.resource_group or spec.resource_group)


def desired_metadata(
    ctx: RunContext, pool: Any, image: PoolImage, tags: Mapping[str, str]
) -> dict[str, str]:
    """Tags (the spec's `tags`, the pool's) and metadata, plus what batchimage marks its
    pools with."""
    return {
        **dict(tags),
        **dict(pool.tags),
        **dict(pool.metadata),
        Marks.Pool.PIPELINE: ctx.pipeline,
        Marks.Pool.POOL: pool.id,
        Marks.Pool.IMAGE_VERSION: image.version,
    }


def version_suffix(version: str) -> str:
    """`1.0.12` -> `v1-0-12` (pool ids take letters, digits, '-' and '_')."""
    return "v" + re.sub(r"[^A-Za-z0-9_-]", "-", version)


@dataclass
class Observed:
    """A spec pool in Azure: the account, what the spec wants, and the live pools."""

    pools: BatchPools
    pool: Any
    image: PoolImage
    desired: Desired
    want: PoolConfig
    family: list[Any]  # live pools standing for this spec pool (not being deleted)
    taken: set[str]  # ids in use (incl. pools being deleted)
    target: Any | None  # a live pool with the wanted image and fixed settings
    live: Any | None  # the pool to compare with: target, else the base id, else newest
    changes: list[Difference] = field(default_factory=list)

    @property
    def base_id(self) -> str:
        return str(self.pool.id)

    def options(self, pool_id: str, secret: Any, metadata: dict[str, str]) -> Any:
        """Create options for a new pool `pool_id` (`metadata` added to the desired)."""
        meta = {**self.desired.metadata, **metadata}
        desired = dataclasses.replace(self.desired, pool_id=pool_id, metadata=meta)
        return create_options(self.pool, desired, secret)

    def new_pool_id(self) -> str:
        """Where a new pool goes: the base id (first pool, or recreate), else
        `<id>-<version-suffix>` (blue/green), made unique with a short config hash."""
        if self.pool.rollout == "recreate" or not self.taken:
            return self.base_id
        digest = short_hash(immutable(self.want))
        suffix = version_suffix(self.image.version)
        for candidate in (
            f"{self.base_id}-{suffix}",
            f"{self.base_id}-{suffix}-{digest[:4]}",
            f"{self.base_id}-{digest[:8]}",
        ):
            if len(candidate) <= MAX_POOL_ID and candidate.lower() not in self.taken:
                return candidate
        return f"{self.base_id[:40]}-{digest}"

    def health(self, wait_for: Any) -> Health | None:
        """The target pool's health against `wait_for` (None without a target)."""
        return health_of(self.pools, self.target, wait_for) if self.target is not None else None


def _newest(pools: list[Any]) -> Any | None:
    return max(pools, key=lambda p: (p.creation_time is not None, p.creation_time), default=None)


def observe(
    ctx: RunContext, pool: Any, image: PoolImage, *, group: str, tags: Mapping[str, str]
) -> Observed:
    """Read the account (in resource group `group`), resolve the node agent, and find the
    spec pool's live pools (`tags`: the spec's, for the desired metadata)."""
    account = find_account(ctx.clients, group, pool.batch_account.name)
    pools = BatchPools(ctx.clients, account)
    agent = resolve_node_agent(pools.supported_images(), image.base, pool.node_agent_sku)
    desired = Desired(
        pool.id,
        image.version_id,
        agent,
        desired_metadata(ctx, pool, image, tags),
        security=image.pool_security,
        resize_timeout_s=resize_timeout_s(pool),
    )
    want = config_of(create_options(pool, desired, lambda _ref: ""))
    found = pools.family(pool.id, ctx.pipeline)
    taken = {str(p.id).lower() for p in found}
    family = [p for p in found if text(p.state).lower() != "deleting"]
    matching = [p for p in family if immutable(config_of(p)) == immutable(want)]
    base = next((p for p in family if str(p.id).lower() == pool.id.lower()), None)
    target = next((p for p in matching if p is base), None) or _newest(matching)
    live = target or base or _newest(family)
    seen = Observed(pools, pool, image, desired, want, family, taken, target, live)
    if live is not None:
        seen.changes = diff(config_of(live), want)
    return seen


def kept_metadata(live: Any) -> dict[str, str]:
    """The metadata batchimage keeps from a live pool (creator run, smoke test mark)."""
    meta = metadata_of(live)
    return {k: meta[k] for k in KEPT_META if k in meta}


def owned_by(ctx: RunContext, live: Any) -> str | None:
    """The run of this pipeline that created `live`, or None (someone else's pool)."""
    return Marks.Pool.creator(metadata_of(live), ctx.pipeline)
