"""Step `cleanup`: delete the build resources this pipeline created - VM, OS disk (or VHD),
NIC, public IP, VNet, NSG, staged files, and the build resource group if we created it and
nothing else is left in it - in dependency order, each idempotent. Never anything the run
did not create. A transient failure (throttling, 5xx, a dropped connection, a delete
operation that failed) stops the deletes and leaves the step as Azure's error, so the engine
tries the step again as it does any step; what cannot be deleted for good is listed (in
the error, with the first one's code and request id, hence in state) and retried by the
next apply.

What to delete is what the build steps recorded in the state plus what Azure shows by the
pipeline's marks (`batchimage.steps.build_inventory`), so a state lost before cleanup ended
leaves nothing behind: the next apply finds the rest and deletes it.

Policy (spec `cleanup`): on_success (default; after a failure the VM is kept to debug),
always (also after a failed customize/generalize/capture: see `after_failure`), never (no
cleanup step)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import Field

from batchimage.azure.arm import GROUP, exists, order_for_delete
from batchimage.azure.errors import AZURE
from batchimage.core.errors import AzureError, BatchImageError, StepFailedError, TransientAzureError
from batchimage.core.refs import ResourceRef
from batchimage.core.retry import RetryPolicy, retry_transient
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.build_inventory import BuildPlaces, build_leftovers
from batchimage.steps.deleting import delete
from batchimage.steps.verbs import DELETE

T = TypeVar("T")


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
    ctx: RunContext, places: BuildPlaces, keys: list[str]
) -> tuple[list[ResourceRef], list[ResourceRef]]:
    """(found in Azure by the pipeline's marks in `places`, recorded by the build steps
    `keys` but not found so): every build resource this pipeline may have left."""
    found = build_leftovers(ctx, places)
    seen = {ref.id.lower() for ref in found}
    return found, [ref for ref in build_refs(ctx, keys) if ref.id.lower() not in seen]


def _group_holds_others(ctx: RunContext, ref: ResourceRef) -> bool:
    from batchimage.azure.groups import resources_in
    from batchimage.azure.ids import parse_id

    return bool(resources_in(ctx.clients, parse_id(ref.id)["group"]))


@dataclass
class Deleted:
    """What `delete_build` did: ids deleted (or gone already), kept with the reason, and
    each failure in words with its error."""

    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failures: list[tuple[str, BatchImageError]] = field(default_factory=list)

    def failed(self) -> str:
        """e.g. "could not delete: Microsoft.Network/networkSecurityGroups n: InUse..."."""
        return "could not delete: " + "; ".join(text for text, _ in self.failures)

    def azure_error(self) -> AzureError | None:
        """The first failure's Azure error (its code and request id), if any."""
        return next((e for _, e in self.failures if isinstance(e, AzureError)), None)


def delete_build(ctx: RunContext, refs: list[ResourceRef], timeout: float | None) -> Deleted:
    """Delete `refs` in dependency order, each within `timeout` seconds. A transient failure
    stops at once and is raised, for the caller to try the whole again (what is deleted is
    gone then); a permanent one is listed, and the rest is still deleted."""
    done = Deleted()
    for ref in order_for_delete(refs):
        name = ref.id.rsplit("/", 1)[-1]
        try:
            result = delete(ctx, ref, timeout_s=timeout)
        except TransientAzureError:
            raise
        except BatchImageError as err:
            done.failures.append((f"{ref.kind} {name}: {err}", err))
            continue
        if result.startswith("kept"):
            done.kept.append(f"{ref.id} ({result})")
            ctx.say(f"kept {name}: {result[6:]}")
        else:
            done.deleted.append(ref.id)
            if result == "deleted":
                ctx.say(f"deleted {name}")
    return done


def cleaning_up_after_failure(ctx: RunContext, apply: Callable[[RunContext], T]) -> T:
    """`apply(ctx)`; if it fails, `after_failure` first, then the failure goes on."""
    try:
        return apply(ctx)
    except Exception as exc:
        after_failure(ctx, exc)
        raise


def after_failure(ctx: RunContext, error: BaseException | None) -> str:
    """After a build step failed for good: delete the build when `cleanup: always`
    (transient failures of the deletes retried as the spec's `retry` says). The policy and
    the rest are the cleanup step's inputs (a pipeline with a build VM and no cleanup step
    has `cleanup: never`).

    Returns a sentence for the error message saying whether the build VM was kept.
    """
    from batchimage.azure.errors import classify

    foreign = classify(error) if error is not None else None  # an SDK exception, as ours
    if isinstance(error, TransientAzureError) or isinstance(foreign, TransientAzureError):
        return ""  # the engine retries the step
    cleanup = next((s for s in ctx.index.steps if isinstance(s, CleanupBuild)), None)
    builds = any(s.key == "build.vm" for s in ctx.index.steps)
    if not builds:
        return ""
    policy = cleanup.given.policy if cleanup is not None else "never"
    if policy != "always" or cleanup is None:
        note = (
            f"the build VM is kept for debugging (cleanup: {policy}); `batchimage destroy` "
            "deletes it, or fix the cause and run apply again to continue"
        )
        ctx.say(note)
        return note
    given = cleanup.given
    retry = given.retry

    def delete_all() -> Deleted:
        found, recorded = build_resources(ctx, given.places, given.build_steps)
        return delete_build(ctx, found + recorded, given.delete_s)

    def retrying(exc: BaseException | None, attempt: int, delay: float) -> None:
        ctx.say(f"cleanup: {getattr(exc, 'code', None) or exc}; trying again in {delay:.0f} s")

    try:
        done = retry_transient(
            delete_all,
            retry,
            clock=ctx.clock,
            stop=ctx.stop,
            deadline=ctx.clock.monotonic() + retry.step_deadline_s,
            on_retry=retrying,
            classify=AZURE.classify,
        )
    except TransientAzureError as err:
        done = Deleted(failures=[(f"build resources: {err}", err)])
    note = f"cleanup: always, so the build resources were deleted ({len(done.deleted)})"
    if done.failures:
        note += "; " + done.failed()
    ctx.say(note)
    return note


class CleanupInputs(StepInputs):
    """The spec's `cleanup` policy and the build steps whose results it deletes (hashed);
    read, not hashed: where the build is, the delete time limit, the retry of a cleanup
    after a failure."""

    policy: str
    build_steps: list[str]
    places: BuildPlaces = Field(exclude=True)
    delete_s: float | None = Field(exclude=True)
    retry: RetryPolicy = Field(exclude=True)


class CleanupBuild(Step[CleanupOutputs]):
    """Delete what the build steps created, once every capture step is done."""

    given: CleanupInputs

    kind = "cleanup_build"
    key = "cleanup"
    verb = DELETE

    def __init__(
        self,
        spec: Any,
        build_keys: list[str],
        capture: list[Step[Any]],
        vm_steps: list[str] | None = None,
    ) -> None:
        """`build_keys`: the steps whose created resources it deletes; `vm_steps`: steps
        whose result goes with the build, not hashed: on the build VM only (generalize),
        or found by the build's marks (a staged file, `customize.<i>.stage`)."""
        self.given = CleanupInputs(
            policy=spec.cleanup,
            build_steps=list(build_keys),
            places=BuildPlaces.of(spec),
            delete_s=spec.timeouts.delete_s,
            retry=RetryPolicy.from_spec(spec.retry),
        )
        self.cleans = (*build_keys, *(vm_steps or []))
        self.depends_on = tuple(capture)

    def _alive(self, ctx: RunContext) -> tuple[list[ResourceRef], list[str], list[str]]:
        """(to delete, gone already, kept on purpose: a group that holds others)."""
        found, recorded = build_resources(ctx, self.given.places, self.given.build_steps)
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
        """Delete what is left; a transient failure leaves as it is (the engine tries the
        step again), permanent ones fail the step with the list."""
        alive, _, _ = self._alive(ctx)
        done = delete_build(ctx, alive, self.given.delete_s)
        if done.failures:
            raise StepFailedError(
                self.key,
                done.failed(),
                resource="build resources",
                hint="these leftovers are retried by the next apply; `batchimage destroy` also "
                "deletes them",
                azure=done.azure_error(),
            )
        return None

    def describe(self) -> str:
        return "delete build resources"

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        return "delete", f"deletes the build resources once {', '.join(changing)} is done"
