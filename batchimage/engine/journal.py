"""The engine's writes to a step's record in the journal (the state): in flight before its
apply, done with what its check found, failed with what went wrong, destroyed; and what
a record keeps of an error. Only the main thread calls these."""

from __future__ import annotations

from typing import Any

from batchimage.core.clip import clip
from batchimage.core.errors import AzureError, StepFailedError
from batchimage.core.redact import redact
from batchimage.core.refs import ResourceRef
from batchimage.engine.graph import Node
from batchimage.state import ErrorRecord, Journal, StepRecord, StepStatus, utcnow
from batchimage.steps.base import Outputs

ERROR_CHARS = 2000  # the most of a step's error the state keeps (its start and its end)


def mark_in_flight(journal: Journal, node: Node, run_id: str) -> None:
    """Before the step's first write call: recorded in flight with the inputs it applies,
    saved at once (a crash shows in_flight)."""
    step = node.step
    rec = journal.record(step.key, step.kind)
    rec.status = StepStatus.IN_FLIGHT
    rec.fingerprint, rec.inputs = node.fingerprint, node.hashes
    rec.started_at, rec.run_id = utcnow(), run_id
    journal.save()


def record_done(journal: Journal, node: Node, found: Outputs, action: str, run_id: str) -> None:
    """The step is done (`action`: what it came to, "no-op" when nothing was applied) with
    the outputs `found`; marked dirty only when the record changes (saved once per loop
    turn)."""
    step = node.step
    rec = journal.record(step.key, step.kind)
    applied = node.applied.created() if node.applied is not None else []
    update: dict[str, Any] = {
        "status": StepStatus.DONE,
        "fingerprint": node.fingerprint,
        "inputs": node.hashes,
        "outputs": found.model_dump(mode="json"),
        "created": merge(rec.created, applied + found.created()),
    }
    if action != "no-op":
        update |= {
            "finished_at": utcnow(),
            "run_id": run_id,
            "last_error": None,
            "attempts": node.attempts,
        }
    if any(getattr(rec, name) != value for name, value in update.items()):
        for name, value in update.items():
            setattr(rec, name, value)
        journal.dirty = True  # saved once per loop turn (no write when unchanged)


def record_failed(
    journal: Journal, node: Node, error: BaseException, *, was_applying: bool
) -> None:
    """The step failed with `error`; a failed check leaves a done record done."""
    step = node.step
    rec = journal.record(step.key, step.kind)
    if was_applying:
        rec.status = StepStatus.FAILED
        rec.attempts = node.attempts
    rec.last_error = error_record(error)
    journal.dirty = True


def record_destroyed(journal: Journal, rec: StepRecord) -> None:
    """Everything the step created is gone: so recorded, and saved."""
    rec.status = StepStatus.DESTROYED
    rec.created = []
    rec.outputs = None
    journal.save()


def merge(old: list[ResourceRef], new: list[ResourceRef]) -> list[ResourceRef]:
    """`old` followed by the resources of `new` it does not list (by id)."""
    seen = {ref.id for ref in old}
    out = list(old)
    for ref in new:
        if ref.id not in seen:
            seen.add(ref.id)
            out.append(ref)
    return out


def error_record(error: BaseException) -> ErrorRecord:
    """What a step's record keeps of `error`: its message (redacted, clipped) and, for an
    Azure error, its code, status, operation and request id."""
    cause = error.cause if isinstance(error, StepFailedError) else error
    azure = error.azure if isinstance(error, StepFailedError) else cause
    fields: dict[str, Any] = {}
    if isinstance(azure, AzureError):
        fields = {
            "code": azure.code,
            "status": azure.status,
            "operation": azure.operation,
            "request_id": azure.request_id,
        }
    message = cause.message if isinstance(cause, AzureError) else str(cause)
    return ErrorRecord(message=clip(redact(message), ERROR_CHARS), **fields)
