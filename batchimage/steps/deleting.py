"""Deleting what the pipeline made: one resource (a build VM's OS disk marked first, so it
is still found if the run stops between the two deletes), or a step's created resources in
dependency order (destroy).

    delete(ctx, ref)                  # "deleted", "gone", or "kept: <why>"
    class CreateNic(DeletesCreated, Step[NicOutputs]): ...   # destroy deletes its outputs
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchimage.azure import arm
from batchimage.core.refs import ResourceRef
from batchimage.steps.build_inventory import mark_os_disk

if TYPE_CHECKING:
    from batchimage.steps.base import Outputs, RunContext


def delete(ctx: RunContext, ref: ResourceRef, *, timeout_s: float | None = None) -> str:
    """`arm.delete`, after marking a build VM's OS disk as ours when `ref` is a VM."""
    if ref.kind == arm.VM:
        mark_os_disk(ctx, ref)
    return arm.delete(ctx, ref, timeout_s=timeout_s)


def delete_created(ctx: RunContext, outputs: Outputs) -> list[tuple[ResourceRef, str]]:
    """Delete what `outputs` says this pipeline created, in dependency order; the ones
    kept on purpose (a group or gallery holding others' resources), each with why."""
    kept: list[tuple[ResourceRef, str]] = []
    for ref in arm.order_for_delete(outputs.created()):
        result = delete(ctx, ref)
        if result.startswith("kept"):
            ctx.say(f"{ref.id.rsplit('/', 1)[-1]} {result}")
            kept.append((ref, result.removeprefix("kept: ")))
    return kept


class DeletesCreated:
    """Mixin for a step whose `destroy` deletes its outputs' created resources."""

    @classmethod
    def destroy(cls, ctx: RunContext, outputs: Any) -> list[tuple[ResourceRef, str]]:
        return delete_created(ctx, outputs)

    @classmethod
    def exists(cls, ctx: RunContext, ref: ResourceRef) -> bool:
        if not arm.readable(ref):
            return True  # not known how to read: say it may be there
        return arm.exists(ctx.clients, ref)
