"""Destroy: delete what the state says this pipeline created, and what the steps'
`leftovers` find in Azure by the pipeline's marks that the state does not list, newest
first (dependants before what they depend on); steps no longer in the spec (orphans)
first of all. Also what destroy would delete, for its plan."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from batchimage.core.errors import BatchImageError
from batchimage.core.events import Event
from batchimage.core.refs import ResourceRef
from batchimage.core.waiting import StepInterrupted
from batchimage.engine import journal, signals, wording
from batchimage.engine.graph import Node
from batchimage.engine.result import Change, RunResult
from batchimage.state import State, StepRecord, StepStatus, utcnow
from batchimage.steps.base import STEP_KINDS, Outputs, RunContext, Step, StepIndex

if TYPE_CHECKING:
    from batchimage.engine.coordinator import Engine


class Placeholder(Step[Outputs]):
    """Stands in for a step no longer in the spec (an orphan being destroyed)."""

    kind = "_placeholder"

    def __init__(self, key: str) -> None:
        self.key = key

    def check(self, ctx: RunContext) -> Outputs | None:
        return None

    def apply(self, ctx: RunContext) -> Outputs | None:
        return None


STEP_KINDS.pop(Placeholder.kind, None)


def orphans(state: State, index: StepIndex) -> list[str]:
    """Steps in `state`, no longer in the spec, that created resources (to delete)."""
    return [
        key
        for key, rec in state.steps.items()
        if key not in index.by_key and rec.status != StepStatus.DESTROYED and rec.created
    ]


def order(e: Engine) -> list[str]:
    """The steps' keys in the order destroy deletes: orphans, then dependants first."""
    return list(reversed(e.orphans())) + [n.step.key for n in reversed(e.nodes)]


def adopt_leftovers(e: Engine) -> None:
    """Add to each step's record what its `leftovers` finds in Azure and no record lists
    (kept in memory until destroy saves), counting in `e.adopted` what it adds."""
    e.adopted = 0
    steps = e.journal.state.steps
    known = {ref.id.lower() for rec in steps.values() for ref in rec.created}
    for node in e.nodes:
        step = node.step
        if type(step).leftovers is Step.leftovers:
            continue
        node.deadline = e.ctx.clock.monotonic() + e.retry.step_deadline_s
        found = e.call(node, functools.partial(step.leftovers, e.ctx.for_step(step, "")))
        new = [r for r in found if r.created_by_run and r.id.lower() not in known]
        if not new:
            continue
        known |= {ref.id.lower() for ref in new}
        rec = e.journal.record(step.key, step.kind)
        rec.created = journal.merge(rec.created, new)
        if rec.status == StepStatus.DESTROYED:
            rec.status = StepStatus.PENDING
        e.adopted += len(new)


def planned(e: Engine, *, observe: bool = False) -> list[tuple[str, ResourceRef]]:
    """What destroy would delete, per resource, in the order it deletes; `observe`: only
    what still exists (read-only; a resource that cannot be read counts as there)."""
    steps = e.journal.state.steps
    doomed = [(key, ref) for key in order(e) if key in steps for ref in steps[key].created]
    if not observe:
        return doomed
    return [(key, ref) for key, ref in doomed if _still_there(e, key, ref)]


def _still_there(e: Engine, key: str, ref: ResourceRef) -> bool:
    cls = STEP_KINDS.get(e.journal.state.steps[key].kind)
    step = e.index.by_key.get(key)
    view = e.ctx.for_step(step, "") if step else e.ctx
    try:
        return cls is None or cls.exists(view, ref)
    except Exception:  # cannot tell: list it, destroy will find out
        return True


def destroy_all(e: Engine, result: RunResult) -> None:
    """Delete every step's resources in `order`, each step's record saved as it goes."""
    for key in order(e):
        signals.check_stop(e.flag, e.journal)
        rec = e.journal.state.steps.get(key)
        if rec is None or rec.status == StepStatus.DESTROYED:
            continue
        if not rec.created and rec.status != StepStatus.DONE and key in e.index.by_key:
            _observe(e, key, rec)
        if rec.created:
            result.changes.append(destroy_step(e, key, result))
        else:
            journal.record_destroyed(e.journal, rec)


def destroy_orphans(e: Engine, result: RunResult) -> None:
    """After a full apply: delete what the steps no longer in the spec created."""
    for key in reversed(e.orphans()):
        signals.check_stop(e.flag, e.journal)
        result.changes.append(destroy_step(e, key, result))


def _observe(e: Engine, key: str, rec: StepRecord) -> None:
    """A step cut short left no record of what it made: look (by name/tags) before deleting."""
    step = e.index.by_key[key]
    node = next(n for n in e.nodes if n.step is step)
    for dep in node.deps:
        recorded = e.ctx.recorded_outputs.get(dep.step.key)
        if recorded is None:
            return
        e.ctx.results[dep.step.key] = recorded
    node.deadline = e.ctx.clock.monotonic() + e.retry.step_deadline_s
    fp, _ = e.fingerprint(node)
    try:
        found = e.call(node, lambda: step.check(e.ctx.for_step(step, fp)))
    except (BatchImageError, StepInterrupted):
        return
    if found is not None:
        rec.created = journal.merge(rec.created, found.created())
        rec.outputs = found.model_dump(mode="json")


def destroy_step(e: Engine, key: str, result: RunResult) -> Change:
    """Delete what the record of step `key` lists; what it came to, as a Change."""
    rec = e.journal.state.steps[key]
    cls = STEP_KINDS.get(rec.kind)
    if cls is None:
        raise wording.unknown_kind(key, rec.kind)
    outputs = _typed_outputs(cls, rec)
    typed = outputs.model_copy(update={"resources": tuple(rec.created)})
    step = e.index.by_key.get(key)
    node = Node(step) if step is not None else Node(Placeholder(key))
    node.deadline = e.ctx.clock.monotonic() + e.retry.step_deadline_s
    refs = list(rec.created)
    e.ctx.events.emit(Event("step_destroying", step=key, message=wording.deleting(refs)))
    started = e.ctx.clock.monotonic()
    view = e.ctx.for_step(step, rec.fingerprint or "") if step else e.ctx
    try:
        kept = e.call(node, lambda: cls.destroy(view, typed)) or []
    except StepInterrupted as exc:
        raise signals.stopped(e.flag, e.journal) from exc
    except BatchImageError as exc:
        rec.last_error = journal.error_record(exc)
        e.journal.save()
        where = ", ".join(r.id for r in rec.created)
        raise wording.step_failed(e.failures, key, where, exc, "destroy") from exc
    rec.finished_at = utcnow()
    took = round(e.ctx.clock.monotonic() - started, 3)
    if kept:  # still recorded: a later destroy deletes them once they are free
        rec.created = [ref for ref, _ in kept]
        e.journal.save()
        why = wording.why_kept(kept)
        result.outcomes[key] = "unchanged"
        result.kept.append(f"{key}: {why}")
        data: dict[str, Any] = {"action": "kept", "outcome": "unchanged", "duration_s": took}
        e.ctx.events.emit(Event("step_destroyed", step=key, message=wording.kept(why), data=data))
        return Change(key, rec.kind, "no-op", wording.kept(why))
    journal.record_destroyed(e.journal, rec)
    result.outcomes[key] = "deleted"
    data = {"action": "destroyed", "outcome": "deleted", "duration_s": took}
    e.ctx.events.emit(Event("step_destroyed", step=key, message=wording.deleted(refs), data=data))
    return Change(key, rec.kind, "delete", wording.deleted(refs))


def _typed_outputs(cls: type[Step[Any]], rec: StepRecord) -> Outputs:
    if rec.outputs is not None:
        try:
            return cls.outputs_type.model_validate(rec.outputs)
        except ValueError:
            pass
    return Outputs.model_construct(resources=tuple(rec.created))
