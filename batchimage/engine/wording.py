"""Every sentence the engine says: the messages of its run and destroy events, the reasons
of its own plan lines (steps not needed, steps no longer in the spec), and the errors and
hints a run ends with. The steps' own words are theirs (`Step.wording`, `describe`), the
decisions' are `batchimage.plan`'s; how events are shown is the display's."""

from __future__ import annotations

from collections.abc import Sequence

from batchimage.core.errors import (
    BatchImageError,
    PreflightError,
    StateError,
    StepFailedError,
    UsageError,
    run_again,
)
from batchimage.core.events import format_duration
from batchimage.core.failures import Failures
from batchimage.core.redact import redact
from batchimage.core.refs import ResourceRef

RESULTS = {"ok": "complete", "failed": "failed", "interrupted": "interrupted"}


def run_started(command: str, pipeline: str, steps: int, run_id: str) -> str:
    """e.g. "apply demo: 13 steps (run 20260101T000000Z-abcdef)" (steps: apply only)."""
    counted = f": {steps} steps" if command == "apply" else ""
    return f"{command} {pipeline}{counted} (run {run_id})"


def took_over(stale: str) -> str:
    """The note of a run that took over a lock left by `stale` (who held it)."""
    return f"took over the lock left by {stale}"


def run_finished(command: str, outcome: str, duration_s: float, summary: str) -> str:
    """e.g. "apply complete in 42 s: 3 created, ..." or "apply failed after 8.2 s: ..."."""
    took = "in" if outcome == "ok" else "after"
    return f"{command} {RESULTS[outcome]} {took} {format_duration(duration_s)}: {summary}"


def stopping(signal_name: str, running: int) -> str:
    """What a run says when a signal stops it with calls still in flight."""
    return (
        f"{signal_name}: stopping; letting {running} in-flight call(s) settle (again to stop now)"
    )


def interrupted(signal_name: str, where: str) -> str:
    """The message of a stopped run: its progress is saved in `where`."""
    by = f" by {signal_name}" if signal_name else ""
    return f"interrupted{by}; progress saved in {where}. Run apply again to resume."


def not_needed(needed_by: Sequence[str]) -> str:
    """Why a step that runs only for others (`apply_needs`) is skipped."""
    return f"not needed: {', '.join(needed_by)} up to date" if needed_by else "not needed"


def orphan(created: int) -> str:
    """Why a step no longer in the spec is deleted."""
    return f"no longer in the spec; it created {created} resource(s)"


def names(refs: Sequence[ResourceRef]) -> str:
    """The resources' names (the last part of their ids), comma separated."""
    return ", ".join(_name(ref) for ref in refs)


def deleting(refs: Sequence[ResourceRef]) -> str:
    """What destroy says as it starts on a step's resources."""
    return f"deleting {names(refs)}"


def deleted(refs: Sequence[ResourceRef]) -> str:
    """What destroy says of a step's resources once they are gone."""
    return f"deleted {names(refs)}"


def why_kept(kept: Sequence[tuple[ResourceRef, str]]) -> str:
    """Which resources destroy kept, and why: "<name>: <why>; ..."."""
    return "; ".join(f"{_name(ref)}: {reason}" for ref, reason in kept)


def kept(why: str) -> str:
    """What destroy says of a step whose resources it kept (`why_kept`)."""
    return f"kept {why}"


def _name(ref: ResourceRef) -> str:
    return ref.id.rsplit("/", 1)[-1]


def no_step(target: str, keys: Sequence[str]) -> UsageError:
    """The error of a `--target` that names no step of the pipeline."""
    return UsageError(f"no step {target!r} in this pipeline; steps: {', '.join(keys)}")


def unknown_kind(key: str, kind: str) -> StateError:
    """The error of a recorded step whose kind this batchimage does not know."""
    return StateError(
        f"state step {key} is of kind {kind!r}, which this batchimage does not know; "
        "use the batchimage version that created it"
    )


def no_result(key: str, resource: str) -> StepFailedError:
    """The error of a step whose apply ended but whose check finds nothing."""
    return StepFailedError(
        key,
        "apply finished but check found no result",
        resource=resource,
        hint="the result did not appear in Azure; look at the resource in the "
        "portal or activity log, then run apply again",
    )


def step_failed(
    failures: Failures,
    key: str,
    resource: str | None,
    error: BaseException,
    command: str = "apply",
) -> StepFailedError:
    """The error a failed step ends the run with; the hint (`failures.hint`'s when it has
    one) names `command` to run again."""
    hint = failures.hint(error, command)
    if hint is None:
        if isinstance(error, PreflightError):  # its message says what was checked, once
            resource = None
        hint = own_hint(error, command)
    return StepFailedError(
        key, redact(str(error)) or type(error).__name__, resource=resource, hint=hint
    )


def own_hint(error: BaseException, command: str) -> str:
    """What to do about a failure the run's `Failures` say nothing of."""
    if isinstance(error, TimeoutError):
        return (
            "the operation took longer than its timeout; raise `timeouts` in the spec or "
            f"check the resource, then run {command} again"
        )
    if isinstance(error, PreflightError):
        return f"fix what the FAIL lines say, then run {command} again"
    if isinstance(error, BatchImageError):
        return f"fix the cause above, then {run_again(command)}"
    return "this is a bug in batchimage; please report it with the output of -v"
