"""What plan and apply decide per step, and the words for it (the steps a spec needs, in
order, are `batchimage.steps.pipeline`).

`decide` is the rule plan and apply share for one step: compare what exists (the step's
read-only check) and what the state recorded with what the inputs ask for, and name the
action (create / update / replace / no-op / read) with a reason a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

from batchimage.core.hashing import short_hash
from batchimage.state import State, StepRecord, StepStatus
from batchimage.steps.base import Outputs, Step, StepIndex

Action = Literal["create", "update", "replace", "delete", "no-op", "read", "skip"]
DONE_WORDS = {"create": "created", "update": "updated", "replace": "replaced", "read": "read"}


def outputs_hash(outputs: Outputs) -> str:
    """Hash of the outputs a dependant consumes (resource bookkeeping, and the fields its
    type calls `unhashed`, excluded)."""
    unhashed = set(getattr(type(outputs), "unhashed", ()))
    return short_hash(
        outputs.model_dump(mode="json", exclude={"resources", "observed_fingerprint", *unhashed})
    )


def changed_inputs(
    old: dict[str, str],
    new: dict[str, str],
    words: Callable[[str], str | None] | None = None,
) -> str:
    """A phrase naming the inputs whose hashes differ, e.g. "input vm_size changed" (or in
    the step's own words, e.g. "the script changed"; a dependency's outputs as `@<key>`,
    e.g. "the base image changed")."""
    names = changed_names(old, new)
    if not names:
        return "inputs changed"
    inputs = [n for n in names if not n.startswith("@")]
    said = [w for w in (words(n) if words else None for n in names) if w]
    plain = [n for n in inputs if not (words and words(n))]
    deps = [n[1:] for n in names if n.startswith("@") and not (words and words(n))]
    parts = []
    if said:
        parts.append(", ".join(said) + " changed")
    if plain:
        parts.append(("inputs " if len(plain) > 1 else "input ") + ", ".join(plain) + " changed")
    if deps:
        parts.append("outputs of " + ", ".join(deps) + " changed")
    return "; ".join(parts)


def own_changes(step: Step[Any], record: StepRecord | None) -> list[str]:
    """Names of `step`'s own inputs whose hashes differ from what `record` was applied with
    (none without a record of a finished apply)."""
    if record is None or not record.inputs:
        return []
    old = {k: v for k, v in record.inputs.items() if not k.startswith("@")}
    return changed_names(old, step.input_hashes())


def input_change(
    step: Step[Any],
    record: StepRecord,
    hashes: dict[str, str],
    edits: list[str],
    changed_deps: dict[str, str],
) -> str:
    """Why `step` changes when its inputs differ from `record`'s: the step's own account
    (from its changed inputs and the `edits` upstream, e.g. "the script of customize.0"),
    else the inputs named; a change of its dependencies' outputs as the step says what
    `changed_deps` ({key: action}) do to it ("runs on the new build VM")."""
    names = changed_names(record.inputs, hashes)
    own = [n for n in names if not n.startswith("@")]
    said = step.explain_change(own, edits)
    if said is not None:
        return said
    deps = [n for n in names if n.startswith("@")]
    effect = step.planned_after(changed_deps, record.outputs) if deps and changed_deps else None
    if effect is None:
        return changed_inputs(record.inputs, hashes, step.input_words)
    if not own:
        return effect[1]
    old = {k: v for k, v in record.inputs.items() if not k.startswith("@")}
    new = {k: v for k, v in hashes.items() if not k.startswith("@")}
    return f"{changed_inputs(old, new, step.input_words)}; {effect[1]}"


def changed_names(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """The input names whose hashes differ (dependency outputs as `@<key>`)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def decide(
    step: Step[Any],
    record: StepRecord | None,
    found: Outputs | None,
    fingerprint: str,
    hashes: dict[str, str],
    *,
    edits: list[str] | None = None,
    gone: str | None = None,
    changed_deps: dict[str, str] | None = None,
) -> tuple[Action, str]:
    """Compare what exists (`found`) and what was recorded with what the inputs ask for.

    `edits` name what changed upstream, in a person's words ("the script of customize.0"),
    for a step whose input derives from other steps' (the image); `gone` says why a result
    recorded as done is not found when the run knows (a cleanup deleted it); `changed_deps`
    ({key: action}) are the dependencies this run changed."""
    changed: Action = step.change
    edits = edits or []
    changed_deps = changed_deps or {}
    drift = getattr(found, "drift", None)  # a step's own account of how Azure differs
    if drift and not step.read_only:
        return getattr(found, "drift_action", None) or changed, str(drift)
    if step.read_only:
        if found is None:
            return "read", "nothing recorded yet"
        if record and record.status == StepStatus.DONE and record.fingerprint == fingerprint:
            read_why = step.read_moved(record.outputs, found)
            return ("read", read_why) if read_why else ("no-op", "up to date")
        if record and record.inputs:
            return "read", input_change(step, record, hashes, edits, changed_deps)
        return "read", "first read"
    if found is not None and found.observed_fingerprint is not None:
        if found.observed_fingerprint == fingerprint:
            note = getattr(found, "note", None)  # what a step wants said even when no change
            return "no-op", f"up to date; {note}" if note else "up to date"
        moved = record is not None and record.inputs and record.inputs != hashes
        why = input_change(step, record, hashes, edits, changed_deps) if record and moved else None
        return changed, why or "exists with other inputs (its fingerprint tag differs)"
    if found is not None:
        if record is None:
            return "update", "exists but is not in the state: will adopt it and converge it"
        if record.status == StepStatus.IN_FLIGHT:
            return "update", "resuming: the last run stopped during this step"
        if record.status == StepStatus.FAILED:
            return "update", "retrying: the last run failed here"
        if record.fingerprint != fingerprint:
            return changed, input_change(step, record, hashes, edits, changed_deps)
        if record.status == StepStatus.DONE:
            return "no-op", "up to date"
        return "update", f"recorded as {record.status.value}"
    if record is not None and record.status == StepStatus.DONE:
        if record.fingerprint != fingerprint and record.inputs:
            return "create", input_change(step, record, hashes, edits, changed_deps)
        if gone:
            return "create", gone
        return "create", "recorded as done but not found (deleted outside batchimage?)"
    if record is not None and record.status == StepStatus.IN_FLIGHT:
        return "create", "resuming: the last run stopped during this step"
    return "create", "does not exist yet"


def upstream_edits(step: Step[Any], index: StepIndex, state: State) -> list[str]:
    """What changed in the steps `step` is made from (its dependencies and needs, all the
    way up), in a person's words: "the script of customize.0 changed", "customize.2 is new"."""
    seen: list[Step[Any]] = []
    stack = index.direct_deps(step)
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.append(dep)
            stack.extend(index.direct_deps(dep))
    order = {s.key: n for n, s in enumerate(index.steps)}
    edits: list[str] = []
    for dep in sorted(seen, key=lambda s: order.get(s.key, 0)):
        record = state.steps.get(dep.key)
        if record is None:
            edits.append(f"{dep.key} is new")
            continue
        names = own_changes(dep, record)
        if names:
            words = [dep.input_words(n) or n for n in names]
            edits.append(f"{', '.join(words)} of {dep.key} changed")
    return edits


def cleaned_by(key: str, index: StepIndex, state: State) -> str | None:
    """The step that deleted `key`'s recorded result after it was made (a cleanup that
    `cleans` it and finished later), or None."""
    record = state.steps.get(key)
    if record is None or record.status != StepStatus.DONE or record.finished_at is None:
        return None
    for cleaner in index.steps:
        if key not in cleaner.cleans:
            continue
        done = state.steps.get(cleaner.key)
        finished = done.finished_at if done and done.status == StepStatus.DONE else None
        if finished is not None and finished >= record.finished_at:
            return cleaner.key
    return None


def gone_reason(cleaner: str, wanted_by: str) -> str:
    """Why a result recorded as done is missing and made again: `cleaner` deleted it."""
    again = f"made again for {wanted_by}" if wanted_by else "made again"
    return f"deleted by {cleaner} after the last apply; {again}"


def blocked(
    step: Step[Any],
    record: StepRecord | None,
    changing: dict[str, str],
    gone: str | None,
) -> tuple[Action, str]:
    """Plan, for a step whose dependencies `changing` ({key: action}) change first: the
    action it will take and why (its changed inputs and its own account of the effect)."""
    upstream = ", ".join(changing)
    if step.read_only:
        return "read", f"after {upstream} changes"
    if record is None or record.status != StepStatus.DONE:
        return "create", f"does not exist yet (after {upstream})"
    own = own_changes(step, record)
    said = step.explain_change(own, []) if own else None
    if own and said is None:
        old = {k: v for k, v in record.inputs.items() if not k.startswith("@")}
        said = changed_inputs(old, step.input_hashes(), step.input_words)
    planned = step.planned_after(changing, record.outputs)
    if planned is not None:
        action, effect = planned
        return cast(Action, action), f"{said}; {effect}" if said else effect
    if gone:
        return "create", f"{gone}, after {upstream}"
    if said:
        return step.change, f"{said}; after {upstream} changes"
    return step.change, f"may change: {upstream} changes first"
