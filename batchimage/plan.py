"""Spec -> ordered steps: the one place that knows the pipeline's order.

`STAGES` lists, in pipeline order, one builder per stage; a builder takes the spec and
returns that stage's steps (none when the spec does not ask for it, several for e.g. one
step per pool). The engine runs steps in this order wherever dependencies allow, and
concurrently where they are independent. The pipeline, in order:

    preflight -> resolve base image -> build resources -> customize -> generalize
    -> capture (gallery version, optional VHD / managed image) -> pools -> cleanup

A stage is added by writing its step module(s) under `batchimage/steps/` and one line
in `STAGES`.

`decide` is the rule plan and apply share for one step: compare what exists (the step's
read-only check) and what the state recorded with what the inputs ask for, and name the
action (create / update / replace / no-op / read) with a reason a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from batchimage.state import StepRecord, StepStatus
from batchimage.steps.base import Outputs, Step, short_hash
from batchimage.steps.image_pipeline import stage
from batchimage.steps.pool_pipeline import pool_stage

StageBuilder = Callable[[Any], list[Step[Any]]]

STAGES: list[tuple[str, StageBuilder]] = [
    ("preflight", stage("preflight")),
    ("resolve", stage("resolve")),
    ("build", stage("build")),
    ("customize", stage("customize")),
    ("generalize", stage("generalize")),
    ("capture", stage("capture")),
    ("pools", pool_stage),
    ("cleanup", stage("cleanup")),
]


def build_steps(spec: Any, stages: list[tuple[str, StageBuilder]] | None = None) -> list[Step[Any]]:
    """The steps `spec` needs, in pipeline order; step keys are unique."""
    steps: list[Step[Any]] = []
    seen: dict[str, str] = {}
    for stage_name, builder in stages if stages is not None else STAGES:
        for step in builder(spec):
            if step.key in seen:
                raise ValueError(
                    f"step key {step.key!r} from stage {stage_name} repeats {seen[step.key]}"
                )
            seen[step.key] = stage_name
            steps.append(step)
    return steps


Action = Literal["create", "update", "replace", "delete", "no-op", "read", "skip"]
CHANGES: frozenset[str] = frozenset({"create", "update", "replace", "delete"})
DONE_WORDS = {"create": "created", "update": "updated", "replace": "replaced", "read": "read"}


@dataclass(frozen=True)
class Change:
    """What plan/apply decided for one step, and why."""

    key: str
    kind: str
    action: Action
    reason: str
    description: str = ""

    def to_json(self) -> dict[str, str]:
        """The change as a JSON-able dict."""
        return asdict(self)


def outputs_hash(outputs: Outputs) -> str:
    """Hash of the outputs a dependant consumes (resource bookkeeping excluded)."""
    return short_hash(
        outputs.model_dump(mode="json", exclude={"resources", "observed_fingerprint"})
    )


def changed_inputs(old: dict[str, str], new: dict[str, str]) -> str:
    """A phrase naming the inputs whose hashes differ, e.g. "input vm_size changed"."""
    names = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not names:
        return "inputs changed"
    inputs = [n for n in names if not n.startswith("@")]
    deps = [n[1:] for n in names if n.startswith("@")]
    parts = []
    if inputs:
        parts.append(("inputs " if len(inputs) > 1 else "input ") + ", ".join(inputs) + " changed")
    if deps:
        parts.append("outputs of " + ", ".join(deps) + " changed")
    return "; ".join(parts)


def decide(
    step: Step[Any],
    record: StepRecord | None,
    found: Outputs | None,
    fingerprint: str,
    hashes: dict[str, str],
) -> tuple[Action, str]:
    """Compare what exists (`found`) and what was recorded with what the inputs ask for."""
    changed: Action = step.change
    drift = getattr(found, "drift", None)  # a step's own account of how Azure differs
    if drift and not step.read_only:
        return getattr(found, "drift_action", None) or changed, str(drift)
    if step.read_only:
        if found is None:
            return "read", "nothing recorded yet"
        if record and record.status == StepStatus.DONE and record.fingerprint == fingerprint:
            return "no-op", "up to date"
        if record and record.inputs:
            return "read", changed_inputs(record.inputs, hashes)
        return "read", "first read"
    if found is not None and found.observed_fingerprint is not None:
        if found.observed_fingerprint == fingerprint:
            return "no-op", "up to date"
        moved = record is not None and record.inputs and record.inputs != hashes
        why = changed_inputs(record.inputs, hashes) if record and moved else None
        return changed, why or "exists with other inputs (its fingerprint tag differs)"
    if found is not None:
        if record is None:
            return "update", "exists but is not in the state: will adopt it and converge it"
        if record.status == StepStatus.IN_FLIGHT:
            return "update", "resuming: the last run stopped during this step"
        if record.status == StepStatus.FAILED:
            return "update", "retrying: the last run failed here"
        if record.fingerprint != fingerprint:
            return changed, changed_inputs(record.inputs, hashes)
        if record.status == StepStatus.DONE:
            return "no-op", "up to date"
        return "update", f"recorded as {record.status.value}"
    if record is not None and record.status == StepStatus.DONE:
        return "create", "recorded as done but not found (deleted outside batchimage?)"
    if record is not None and record.status == StepStatus.IN_FLIGHT:
        return "create", "resuming: the last run stopped during this step"
    return "create", "does not exist yet"
