"""Step `cleanup`: delete the build resources this pipeline created - VM, OS disk (or VHD),
NIC, public IP, VNet, NSG, staged files, and the build resource group if we created it and
nothing else is left in it - in dependency order, each idempotent. Never anything the run
did not create. What cannot be deleted is listed (in the error, hence in state) and retried
by the next apply.

What to delete is what the build steps recorded in the state plus what Azure shows by the
pipeline's marks (`batchimage.azure.build_inventory`), so a state lost before cleanup ended
leaves nothing behind: the next apply finds the rest and deletes it.

Policy (spec `cleanup`): on_success (default; after a failure the VM is kept to debug),
always (also after a failed customize/generalize/capture: see `after_failure`), never (no
cleanup step)."""

from __future__ import annotations

from typing import Any

from batchimage.azure.arm import GROUP, delete, exists, order_for_delete
from batchimage.azure.build_inventory import build_leftovers
from batchimage.errors import BatchImageError, StepFailedError, TransientAzureError
from batchimage.state import ResourceRef
from batchimage.steps.base import DELETE, Outputs, RunContext, Step


class CleanupOutputs(Outputs):
    """What cleanup found gone (deleted now or earlier) and what it kept on purpose."""

    deleted: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


def build_refs(ctx: RunContext, keys: list[str]) -> list[ResourceRef]:
    """The resources the build steps `keys` recorded as created by this pipeline."""
    refs: list[ResourceRef] = []
    seen: set[str] = set()
    state = ctx.state
    if state is None:
        return refs
    for key in keys:
        record = state.steps.get(key)
        for ref in list(record.created) if record is not None else []:
            if ref.created_by_run and ref.id not in seen:
                seen.add(ref.id)
                refs.append(ref)
    return refs


def build_resources(
    ctx: RunContext, keys: list[str]
) -> tuple[list[ResourceRef], list[ResourceRef]]:
    """(found in Azure by the pipeline's marks, recorded by the build steps `keys` but not
    found so): every build resource this pipeline may have left."""
    found = build_leftovers(ctx)
    seen = {ref.id.lower() for ref in found}
    return found, [ref for ref in build_refs(ctx, keys) if ref.id.lower() not in seen]


def _group_holds_others(ctx: RunContext, ref: ResourceRef) -> bool:
    from batchimage.azure.errors import azure_call
    from batchimage.azure.names import parse_id

    group = parse_id(ref.id)["group"]
    with azure_call(f"list resources in group {group}"):
        return any(True for _ in ctx.clients.resource.resources.list_by_resource_group(group))


def delete_build(
    ctx: RunContext, refs: list[ResourceRef]
) -> tuple[list[str], list[str], list[str]]:
    """Delete `refs` in dependency order: (deleted ids, kept with reason, failures)."""
    deleted: list[str] = []
    kept: list[str] = []
    failures: list[str] = []
    timeout = getattr(getattr(ctx.spec, "timeouts", None), "delete_s", None)
    for ref in order_for_delete(refs):
        name = ref.id.rsplit("/", 1)[-1]
        try:
            result = delete(ctx, ref, timeout_s=timeout)
        except BatchImageError as err:
            failures.append(f"{ref.kind} {name}: {err}")
            continue
        if result.startswith("kept"):
            kept.append(f"{ref.id} ({result})")
            ctx.say(f"kept {name}: {result[6:]}")
        else:
            deleted.append(ref.id)
            if result == "deleted":
                ctx.say(f"deleted {name}")
    return deleted, kept, failures


def after_failure(ctx: RunContext, error: BaseException | None) -> str:
    """After a build step failed for good: delete the build when `cleanup: always`.

    Returns a sentence for the error message saying whether the build VM was kept.
    """
    if isinstance(error, TransientAzureError):
        return ""  # the engine retries the step
    if error is not None and type(error).__module__.startswith("azure."):
        from batchimage.azure.errors import translate

        if isinstance(translate(error), TransientAzureError):
            return ""
    policy = getattr(ctx.spec, "cleanup", "on_success")
    cleanup = next((s for s in ctx.index.steps if isinstance(s, CleanupBuild)), None)
    builds = any(s.key == "build.vm" for s in ctx.index.steps)
    if not builds:
        return ""
    if policy != "always" or cleanup is None:
        note = (
            f"the build VM is kept for debugging (cleanup: {policy}); `batchimage destroy` "
            "deletes it, or fix the cause and run apply again to continue"
        )
        ctx.say(note)
        return note
    found, recorded = build_resources(ctx, cleanup.build_keys)
    deleted, _, failures = delete_build(ctx, found + recorded)
    note = f"cleanup: always, so the build resources were deleted ({len(deleted)})"
    if failures:
        note += "; could not delete: " + "; ".join(failures)
    ctx.say(note)
    return note


class CleanupBuild(Step[CleanupOutputs]):
    """Delete what the build steps created, once every capture step is done."""

    kind = "cleanup_build"
    key = "cleanup"
    verb = DELETE

    def __init__(self, spec: Any, build_keys: list[str], capture: list[Step[Any]]) -> None:
        self.build_keys = list(build_keys)
        self.depends_on = tuple(capture)
        self.policy = spec.cleanup

    def inputs(self) -> dict[str, Any]:
        return {"policy": self.policy, "build_steps": self.build_keys}

    def _alive(self, ctx: RunContext) -> tuple[list[ResourceRef], list[str], list[str]]:
        """(to delete, gone already, kept on purpose: a group that holds others)."""
        found, recorded = build_resources(ctx, self.build_keys)
        alive, gone, kept = list(found), [], []
        for ref in recorded:
            if exists(ctx.clients, ref):
                alive.append(ref)
            else:
                gone.append(ref.id)
        if all(ref.kind == GROUP for ref in alive):  # only a group left: keep it if not empty
            for ref in [r for r in alive if _group_holds_others(ctx, r)]:
                alive.remove(ref)
                kept.append(ref.id)
        return alive, gone, kept

    def check(self, ctx: RunContext) -> CleanupOutputs | None:
        alive, gone, kept = self._alive(ctx)
        if alive:
            return None
        return CleanupOutputs(
            deleted=tuple(sorted(gone)),
            kept=tuple(sorted(kept)),
            observed_fingerprint=ctx.fingerprint,
        )

    def apply(self, ctx: RunContext) -> CleanupOutputs | None:
        alive, _, _ = self._alive(ctx)
        _, _, failures = delete_build(ctx, alive)
        if failures:
            raise StepFailedError(
                self.key,
                "could not delete: " + "; ".join(failures),
                resource="build resources",
                hint="these leftovers are retried by the next apply; `batchimage destroy` also "
                "deletes them",
            )
        return None

    def describe(self) -> str:
        return "delete build resources"
