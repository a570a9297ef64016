"""Who made a resource, as the steps read and write it: ownership from tags, refs with their
creator run, the fingerprint to compare, and the tags a step writes.

    owned(ctx, tags)                  # this pipeline made it
    ref_for(ctx, id, VM, tags)        # ResourceRef with created_by_run read from the tags
    observed(ctx, tags)               # the fingerprint to compare with the step's
    resource_tags(ctx, tags, found)   # the spec's tags + the pipeline's marks for a write
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from batchimage.core.ownership import Marks
from batchimage.core.refs import ResourceRef

if TYPE_CHECKING:
    from batchimage.steps.base import RunContext


def owned(ctx: RunContext, tags: Mapping[str, str] | None) -> bool:
    """Whether this pipeline created the resource carrying `tags` (its pipeline and run tags)."""
    return bool(Marks.Tag.creator(tags, ctx.pipeline))


def ref_for(
    ctx: RunContext, resource_id: str, kind: str, tags: Mapping[str, str] | None
) -> ResourceRef:
    """A ResourceRef whose creator is read back from the tags (None: not this pipeline's)."""
    run = Marks.Tag.creator(tags, ctx.pipeline) or None
    return ResourceRef(id=resource_id, kind=kind, created_by_run=run)


def observed(ctx: RunContext, tags: Mapping[str, str] | None) -> str | None:
    """The fingerprint to compare: the tag of a resource we made; for one we only use (made
    by someone else), the current fingerprint, since we take it as it is and never write it."""
    if owned(ctx, tags):
        return (tags or {}).get(Marks.Tag.FINGERPRINT)
    return ctx.fingerprint


def resource_tags(
    ctx: RunContext,
    tags: Mapping[str, str],
    existing: Mapping[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """Tags for a resource this step writes: the spec's `tags` (from the step's inputs),
    `extra`, and the pipeline's own (run, pipeline, step, fingerprint; see
    `RunContext.tags`) over the `existing` ones."""
    return {**dict(tags), **extra, **ctx.tags(existing)}
