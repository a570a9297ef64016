"""The step engine: observe, act only if needed, observe again, record.

Per step (`Engine.apply`):

    check ──found, fingerprint matches──────────────────────────────▶ no-op (zero writes)
      └─missing / changed / resuming ─▶ apply needs ─▶ apply ─▶ check ─▶ record done
                                       (retry: transient only)  (nothing found: step fails)

- The effective fingerprint of a step = its own inputs + the outputs of the steps it
  `depends_on`; a changed input re-runs the step, and its dependants only if its
  outputs changed. The hash per input is recorded so `plan` can name what changed.
- `apply_needs` steps run only when the step that needs them has to apply; `reads` steps
  run first like `depends_on` ones, but their outputs are not part of the fingerprint
  (facts the step compares with what it finds, e.g. the exact base image).
- Independent steps run concurrently on at most `max_workers` threads; the main thread
  alone touches the journal (state), saving after every step transition.
- A transient Azure error is retried (`batchimage.retry`: Retry-After honoured, else
  exponential backoff with jitter), up to `max_attempts` and the per-step deadline;
  anything else fails the step at once. The engine knows no cloud: the `Failures` it is
  given (`batchimage.core.failures`; the commands give `batchimage.azure.errors.AZURE`) map a
  foreign exception to ours and say what to do about a failure.
- SIGINT/SIGTERM (`handle_signals`): no new work starts, in-flight calls get `grace_s` to
  settle (waits stop at once), state is saved, `Interrupted` (exit 130) is raised; a step
  cut short stays `in_flight` and the next apply re-runs it (apply is idempotent).

`Engine.plan` runs the same walk read-only and returns a `Change` per step;
`Engine.destroy` deletes what the state says this pipeline created, and what the steps'
`leftovers` find in Azure by the pipeline's tags that the state does not list, newest first.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import secrets
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, TypeVar

from batchimage.core import threads
from batchimage.core.clip import clip
from batchimage.core.errors import (
    AzureError,
    BatchImageError,
    CallsStopped,
    Interrupted,
    LockLostError,
    PreflightError,
    StateError,
    StepFailedError,
    UsageError,
    run_again,
)
from batchimage.core.events import Event, format_duration
from batchimage.core.failures import Failures
from batchimage.core.hashing import fingerprint_of
from batchimage.core.redact import redact
from batchimage.core.refs import ResourceRef
from batchimage.core.waiting import StepInterrupted
from batchimage.plan import (
    CHANGES,
    DONE_WORDS,
    Action,
    Change,
    blocked,
    cleaned_by,
    decide,
    gone_reason,
    outputs_hash,
    upstream_edits,
)
from batchimage.retry import RetryPolicy, retry_transient
from batchimage.state import ErrorRecord, Journal, StepRecord, StepStatus, utcnow
from batchimage.steps.base import STEP_KINDS, Outputs, RunContext, Step, StepIndex

# What a step's run came to, in the summary's order; the first four are always counted.
OUTCOMES = (
    "created",
    "changed",
    "deleted",
    "unchanged",
    "read",
    "skipped",
    "failed",
    "interrupted",
    "not run",
)


@dataclass
class RunResult:
    """What a run did: one Change per step, in plan order (action in past tense).

    `outcomes` says per step key what its run came to, in the words the summary counts:
    created, changed, deleted, unchanged, read, skipped, failed, interrupted, not run.
    """

    run_id: str
    changes: list[Change] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    kept: list[str] = field(default_factory=list)  # destroy: "<step>: <what> kept: <why>"

    def count(self, action: str) -> int:
        """How many steps ended with `action` (e.g. "created", "no-op")."""
        return sum(1 for c in self.changes if c.action == action)

    def counts(self) -> dict[str, int]:
        """Steps per outcome, in the summary's order (only the outcomes some step had)."""
        found = list(self.outcomes.values())
        return {name: found.count(name) for name in OUTCOMES if name in found}

    def summary(self, *, always: Sequence[str] = OUTCOMES[:4]) -> str:
        """e.g. "7 created, 3 changed, 1 deleted, 4 unchanged, 2 read, 6 skipped"."""
        counts = dict.fromkeys(always, 0) | self.counts()
        ordered = [name for name in OUTCOMES if name in counts]
        return ", ".join(f"{counts[name]} {name}" for name in ordered) or "nothing to do"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus 6 random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


T = TypeVar("T")
ERROR_CHARS = 2000  # the most of a step's error the state keeps (its start and its end)
__all__ = ["CHANGES", "Change", "Engine", "Journal", "RetryPolicy", "RunResult", "StopFlag"]


# -- signals ------------------------------------------------------------------------------


class StopFlag:
    """Set by SIGINT/SIGTERM: first signal = stop gracefully, second = stop now."""

    def __init__(self) -> None:
        self.requested = False
        self.forced = False
        self.signal_name = ""
        self.error: BatchImageError | None = None

    def abort(self, error: BatchImageError) -> None:
        """Stop now, with no grace, and end the run with `error` (the lock was lost; any
        thread may call it: it only sets attributes)."""
        self.error = error
        self.requested = True
        self.forced = True

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask the run to stop (called from a signal handler: only sets attributes)."""
        if self.requested:
            self.forced = True
        self.requested = True
        self.signal_name = signal.Signals(signum).name


@contextlib.contextmanager
def handle_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """Route SIGINT and SIGTERM to `flag` for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in sigs}
    for sig in sigs:
        signal.signal(sig, lambda signum, _frame: flag.request(signum))
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- the walk -----------------------------------------------------------------------------


class Phase(Enum):
    IDLE = "idle"  # not (yet) demanded
    WAIT_DEPS = "wait_deps"
    PRECHECKING = "prechecking"  # apply only: asking `absent` while dependencies run
    CHECKING = "checking"
    WAIT_NEEDS = "wait_needs"
    APPLYING = "applying"
    DONE = "done"
    CHANGING = "changing"  # plan only: will change
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass
class Node:
    step: Step[Any]
    deps: list[Node] = field(default_factory=list)  # depends_on
    needs: list[Node] = field(default_factory=list)  # apply_needs
    phase: Phase = Phase.IDLE
    fingerprint: str = ""
    hashes: dict[str, str] = field(default_factory=dict)
    change: Change | None = None
    started: float = 0.0
    deadline: float = 0.0
    attempts: int = 0
    applied: Outputs | None = None
    outcome: str = ""  # what its run came to (RunResult.outcomes)
    prechecked: bool = False  # `absent` was asked this walk
    early: bool = False  # decided by `absent`: no check before its apply
    wanted_by: str = ""  # the step whose apply needs it (an `apply_needs` chain), if any


@dataclass
class _Msg:
    node: Node
    what: Literal["prechecked", "checked", "applied"]
    value: Any = None  # prechecked: absent (bool); checked / applied: the outputs found
    error: BaseException | None = None


class Engine:
    """Runs one pipeline's steps against Azure; see the module docstring."""

    def __init__(
        self,
        steps: Sequence[Step[Any]],
        ctx: RunContext,
        journal: Journal,
        *,
        retry: RetryPolicy | None = None,
        failures: Failures | None = None,
        max_workers: int = 4,
        grace_s: float = 20.0,
        stop_flag: StopFlag | None = None,
    ) -> None:
        self.index = StepIndex(list(steps))
        self.ctx = ctx
        self.ctx.index = self.index
        self.journal = journal
        self.retry = retry or RetryPolicy()
        self.failures = failures or Failures()
        self.max_workers = max(1, max_workers)
        self.grace_s = grace_s
        self.flag = stop_flag or StopFlag()
        self._adopted: int | None = None  # resources `adopt_leftovers` added (None: not asked)
        # What the last plan's checks found, per step: (fingerprint, outputs); an apply that
        # follows at once (`reuse_plan`) takes these instead of asking Azure again.
        self._observed: dict[str, tuple[str, Outputs]] = {}
        self.nodes = self._build_nodes()
        self._load_recorded()

    # -- public API ----------------------------------------------------------------------

    def plan(
        self, *, offline: bool = False, target: str | None = None, command: str = "plan"
    ) -> list[Change]:
        """What apply would do, per step in order (read-only; `offline`: from state alone);
        a failure's hint says to run `command` again (apply, when it plans first)."""
        self._observed = {}
        walk = _Walk(self, "offline" if offline else "plan", target)
        walk.run()
        walk.raise_outcome(command)
        changes = [n.change for n in self.nodes if n.change is not None]
        if target is None:
            changes += [self._orphan_change(key) for key in self.orphans()]
        return changes

    def apply(
        self, *, target: str | None = None, command: str = "apply", reuse_plan: bool = False
    ) -> RunResult:
        """Bring Azure to what the steps say; resume after any failure; raise on failure.
        `reuse_plan`: the plan just made is still fresh (no wait since), so a step whose
        check it answered with the same fingerprint is not checked again."""
        result = RunResult(self.ctx.run_id)
        observed, self._observed = (self._observed if reuse_plan else {}), {}
        with self._recorded_run(command, result):
            walk = _Walk(self, "apply", target, observed)
            walk.run()
            result.changes = [n.change for n in self.nodes if n.change is not None]
            result.outcomes = {n.step.key: n.outcome for n in self.nodes if n.outcome}
            walk.raise_outcome(command)
            if target is None:
                for key in reversed(self.orphans()):
                    self._check_stop()
                    result.changes.append(self._destroy_record(key, result))
        return result

    def destroy(self) -> RunResult:
        """Delete what this pipeline created (state says so, or Azure by the pipeline's
        marks: `adopt_leftovers`), dependants first."""
        self.adopt_leftovers()
        result = RunResult(self.ctx.run_id)
        with self._recorded_run("destroy", result):
            keys = list(reversed(self.orphans()))
            keys += [n.step.key for n in reversed(self.nodes)]
            for key in keys:
                self._check_stop()
                rec = self.journal.state.steps.get(key)
                if rec is None or rec.status == StepStatus.DESTROYED:
                    continue
                if not rec.created and rec.status != StepStatus.DONE and key in self.index.by_key:
                    self._observe_for_destroy(key, rec)
                if rec.created:
                    result.changes.append(self._destroy_record(key, result))
                else:
                    rec.status = StepStatus.DESTROYED
                    rec.outputs = None
                    self.journal.save()
        return result

    @contextlib.contextmanager
    def _recorded_run(self, command: str, result: RunResult) -> Iterator[None]:
        """Journal and announce one run; its outcome is ok, failed or interrupted."""
        self.journal.begin(command, self.ctx.run_id)
        self._emit_start(command)
        started = self.ctx.clock.monotonic()
        outcome: Literal["ok", "failed", "interrupted"] = "failed"
        try:
            yield
            outcome = "ok"
        except (Interrupted, LockLostError):
            outcome = "interrupted"
            raise
        finally:
            result.duration_s = round(self.ctx.clock.monotonic() - started, 3)
            self.journal.finish(outcome)
            self._emit_end(command, outcome, result)

    def adopt_leftovers(self) -> int:
        """Before destroy: add to each step's record what its `leftovers` finds in Azure
        and no record lists (a lost state, a step cut short); kept in memory until destroy
        saves. Returns how many resources were added (asked once per engine)."""
        if self._adopted is not None:
            return self._adopted
        self._adopted = 0
        steps = self.journal.state.steps
        known = {ref.id.lower() for rec in steps.values() for ref in rec.created}
        for node in self.nodes:
            step = node.step
            if type(step).leftovers is Step.leftovers:
                continue
            node.deadline = self.ctx.clock.monotonic() + self.retry.step_deadline_s
            found = self.call(node, functools.partial(step.leftovers, self.ctx.for_step(step, "")))
            new = [r for r in found if r.created_by_run and r.id.lower() not in known]
            if not new:
                continue
            known |= {ref.id.lower() for ref in new}
            rec = self.journal.record(step.key, step.kind)
            rec.created = _merge(rec.created, new)
            if rec.status == StepStatus.DESTROYED:
                rec.status = StepStatus.PENDING
            self._adopted += len(new)
        return self._adopted

    def destroy_plan(self, *, observe: bool = False) -> list[tuple[str, ResourceRef]]:
        """What destroy would delete, per resource, in the order it deletes; `observe`: only
        what still exists (read-only; a resource that cannot be read counts as there)."""
        order = list(reversed(self.orphans())) + [n.step.key for n in reversed(self.nodes)]
        steps = self.journal.state.steps
        doomed = [(key, ref) for key in order if key in steps for ref in steps[key].created]
        if not observe:
            return doomed
        return [(key, ref) for key, ref in doomed if self._still_there(key, ref)]

    def _still_there(self, key: str, ref: ResourceRef) -> bool:
        cls = STEP_KINDS.get(self.journal.state.steps[key].kind)
        step = self.index.by_key.get(key)
        view = self.ctx.for_step(step, "") if step else self.ctx
        try:
            return cls is None or cls.exists(view, ref)
        except Exception:  # cannot tell: list it, destroy will find out
            return True

    def orphans(self) -> list[str]:
        """Steps in the state, no longer in the spec, that created resources (to delete)."""
        return [
            key
            for key, rec in self.journal.state.steps.items()
            if key not in self.index.by_key and rec.status != StepStatus.DESTROYED and rec.created
        ]

    # -- building ------------------------------------------------------------------------

    def _build_nodes(self) -> list[Node]:
        seen: dict[str, Node] = {}
        for step in self.index.steps:
            if step.key in seen:
                raise ValueError(f"two steps share the key {step.key!r}")
            seen[step.key] = Node(step)
        for node in seen.values():
            node.deps = [seen[d.key] for d in self.index.direct_deps(node.step, with_needs=False)]
            needs = self.index.direct_deps(node.step, with_needs=True)
            node.needs = [seen[d.key] for d in needs if seen[d.key] not in node.deps]
        order: list[Node] = []
        marks: dict[str, int] = {}

        def visit(node: Node, path: list[str]) -> None:
            state = marks.get(node.step.key, 0)
            if state == 2:
                return
            if state == 1:
                raise ValueError("steps depend on each other: " + " -> ".join(path))
            marks[node.step.key] = 1
            for dep in node.deps + node.needs:
                visit(dep, [*path, dep.step.key])
            marks[node.step.key] = 2
            order.append(node)

        for node in seen.values():
            visit(node, [node.step.key])
        return order

    def _load_recorded(self) -> None:
        for node in self.nodes:
            rec = self.journal.state.steps.get(node.step.key)
            if rec is not None and rec.outputs is not None and rec.status == StepStatus.DONE:
                with contextlib.suppress(ValueError):
                    typed = node.step.outputs_type.model_validate(rec.outputs)
                    self.ctx.recorded_outputs[node.step.key] = typed

    def conditional(self) -> set[str]:
        """Keys of steps that run only when a step that needs them applies."""
        needed: set[str] = set()
        stack = [n for node in self.nodes for n in node.needs]
        while stack:
            node = stack.pop()
            if node.step.key not in needed:
                needed.add(node.step.key)
                stack.extend(node.deps)
        by_key = {n.step.key: n for n in self.nodes}
        unconditional = {n.step.key for n in self.nodes if n.step.key not in needed}
        stack = [by_key[k] for k in unconditional]
        while stack:
            node = stack.pop()
            for dep in node.deps:
                if dep.step.key not in unconditional:
                    unconditional.add(dep.step.key)
                    stack.append(dep)
        return {n.step.key for n in self.nodes} - unconditional

    # -- helpers used by the walk --------------------------------------------------------

    def fingerprint(self, node: Node) -> tuple[str, dict[str, str]]:
        """The effective fingerprint: own input hashes + hashes of dependency outputs."""
        hashes = dict(node.step.input_hashes())
        facts = {s.key for ref in node.step.reads for s in self.index.resolve(ref)}
        for dep in node.deps:
            if dep.step.key in facts:  # read, compared with what it finds: not an input
                continue
            out = self.ctx.results.get(dep.step.key)
            hashes[f"@{dep.step.key}"] = outputs_hash(out) if out is not None else "unknown"
        return fingerprint_of(hashes), hashes

    def call(self, node: Node, fn: Callable[[], T], *, counts: bool = False) -> T:
        """Run `fn` with step-level retry of transient failures (see RetryPolicy); `counts`:
        each try is an attempt of the step's apply."""

        def attempt() -> T:
            if counts:
                node.attempts += 1
            return fn()

        def retrying(exc: BaseException | None, number: int, delay: float) -> None:
            self.ctx.events.emit(
                Event(
                    "step_retrying",
                    step=node.step.key,
                    message=redact(str(exc)),
                    data={
                        "attempt": number,
                        "max_attempts": self.retry.max_attempts,
                        "delay_s": round(delay, 3),
                        "code": getattr(exc, "code", None),
                    },
                )
            )

        return retry_transient(
            attempt,
            self.retry,
            clock=self.ctx.clock,
            stop=self.ctx.stop,
            deadline=node.deadline,
            on_retry=retrying,
            classify=self.failures.classify,
        )

    def _check_stop(self) -> None:
        if self.flag.error is not None:
            raise self.flag.error
        if self.flag.requested:
            raise Interrupted(self._interrupted_message())

    def _interrupted_message(self) -> str:
        where = self.journal.store.where if self.journal.store else "the state"
        by = f" by {self.flag.signal_name}" if self.flag.signal_name else ""
        return f"interrupted{by}; progress saved in {where}. Run apply again to resume."

    def _orphan_change(self, key: str) -> Change:
        rec = self.journal.state.steps[key]
        n = len(rec.created)
        return Change(key, rec.kind, "delete", f"no longer in the spec; it created {n} resource(s)")

    def _observe_for_destroy(self, key: str, rec: StepRecord) -> None:
        """A step cut short left no record of what it made: look (by name/tags) before deleting."""
        step = self.index.by_key[key]
        node = next(n for n in self.nodes if n.step is step)
        for dep in node.deps:
            recorded = self.ctx.recorded_outputs.get(dep.step.key)
            if recorded is None:
                return
            self.ctx.results[dep.step.key] = recorded
        node.deadline = self.ctx.clock.monotonic() + self.retry.step_deadline_s
        fp, _ = self.fingerprint(node)
        try:
            found = self.call(node, lambda: step.check(self.ctx.for_step(step, fp)))
        except (BatchImageError, StepInterrupted):
            return
        if found is not None:
            rec.created = _merge(rec.created, found.created())
            rec.outputs = found.model_dump(mode="json")

    def _destroy_record(self, key: str, result: RunResult) -> Change:
        rec = self.journal.state.steps[key]
        cls = STEP_KINDS.get(rec.kind)
        if cls is None:
            raise StateError(
                f"state step {key} is of kind {rec.kind!r}, which this batchimage does not know; "
                "use the batchimage version that created it"
            )
        outputs = _typed_outputs(cls, rec)
        typed = outputs.model_copy(update={"resources": tuple(rec.created)})
        step = self.index.by_key.get(key)
        node = Node(step) if step is not None else Node(_Placeholder(key))
        node.deadline = self.ctx.clock.monotonic() + self.retry.step_deadline_s
        names = ", ".join(ref.id.rsplit("/", 1)[-1] for ref in rec.created)
        self.ctx.events.emit(Event("step_destroying", step=key, message=f"deleting {names}"))
        started = self.ctx.clock.monotonic()
        view = self.ctx.for_step(step, rec.fingerprint or "") if step else self.ctx
        try:
            kept = self.call(node, lambda: cls.destroy(view, typed)) or []
        except StepInterrupted as exc:
            raise Interrupted(self._interrupted_message()) from exc
        except BatchImageError as exc:
            rec.last_error = _error_record(exc)
            self.journal.save()
            where = ", ".join(r.id for r in rec.created)
            raise _step_failed(self.failures, key, where, exc, "destroy") from exc
        rec.finished_at = utcnow()
        took = round(self.ctx.clock.monotonic() - started, 3)
        if kept:  # still recorded: a later destroy deletes them once they are free
            rec.created = [ref for ref, _ in kept]
            self.journal.save()
            why = "; ".join(f"{ref.id.rsplit('/', 1)[-1]}: {reason}" for ref, reason in kept)
            result.outcomes[key] = "unchanged"
            result.kept.append(f"{key}: {why}")
            data = {"action": "kept", "outcome": "unchanged", "duration_s": took}
            self.ctx.events.emit(
                Event("step_destroyed", step=key, message=f"kept {why}", data=data)
            )
            return Change(key, rec.kind, "no-op", f"kept {why}")
        rec.status = StepStatus.DESTROYED
        rec.created = []
        rec.outputs = None
        self.journal.save()
        result.outcomes[key] = "deleted"
        data = {"action": "destroyed", "outcome": "deleted", "duration_s": took}
        self.ctx.events.emit(
            Event("step_destroyed", step=key, message=f"deleted {names}", data=data)
        )
        return Change(key, rec.kind, "delete", f"deleted {names}")

    def _emit_start(self, command: str) -> None:
        steps = f": {len(self.nodes)} steps" if command == "apply" else ""
        self.ctx.events.emit(
            Event(
                "run_started",
                message=f"{command} {self.ctx.pipeline}{steps} (run {self.ctx.run_id})",
                data={
                    "command": command,
                    "pipeline": self.ctx.pipeline,
                    "run_id": self.ctx.run_id,
                    "steps": [n.step.key for n in self.nodes],
                },
            )
        )
        if self.journal.stale is not None:
            self.ctx.events.emit(
                Event(
                    "run_note",
                    message=f"took over the lock left by {self.journal.stale.describe()}",
                )
            )

    def _emit_end(self, command: str, outcome: str, result: RunResult) -> None:
        if outcome != "ok" and command == "apply":  # steps due to run that never finished
            for node in self.nodes:
                due = node.phase is not Phase.IDLE or node.change is not None
                if due and node.step.key not in result.outcomes:
                    result.outcomes[node.step.key] = node.outcome or "not run"
        verb = {"ok": "complete", "failed": "failed", "interrupted": "interrupted"}[outcome]
        always = OUTCOMES[:4] if command == "apply" else ()
        self.ctx.events.emit(
            Event(
                "run_finished",
                message=f"{command} {verb} {'in' if outcome == 'ok' else 'after'} "
                f"{format_duration(result.duration_s)}: "
                f"{result.summary(always=always)}",
                data={
                    "result": outcome,
                    "counts": result.counts(),
                    "duration_s": result.duration_s,
                },
            )
        )


class _Placeholder(Step[Outputs]):
    """Stands in for a step no longer in the spec (an orphan being destroyed)."""

    kind = "_placeholder"

    def __init__(self, key: str) -> None:
        self.key = key

    def check(self, ctx: RunContext) -> Outputs | None:
        return None

    def apply(self, ctx: RunContext) -> Outputs | None:
        return None


STEP_KINDS.pop(_Placeholder.kind, None)


class _Walk:
    """One pass over the steps: plan (observe), offline plan (state only) or apply."""

    def __init__(
        self,
        engine: Engine,
        mode: Literal["plan", "offline", "apply"],
        target: str | None,
        observed: dict[str, tuple[str, Outputs]] | None = None,
    ):
        self.e = engine
        self.mode = mode
        self.observed = observed or {}
        self.inbox: queue.Queue[_Msg] = queue.Queue()
        self.running = 0
        self.stopping = False
        self.stop_deadline = 0.0
        self.failures: list[tuple[Node, BaseException]] = []
        self.interrupted = False
        self.target = target
        for node in engine.nodes:
            node.phase, node.change, node.attempts, node.applied = Phase.IDLE, None, 0, None
            node.outcome, node.prechecked, node.early, node.wanted_by = "", False, False, ""
        if target is not None:
            chosen = next((n for n in engine.nodes if n.step.key == target), None)
            if chosen is None:
                keys = ", ".join(n.step.key for n in engine.nodes)
                raise UsageError(f"no step {target!r} in this pipeline; steps: {keys}")
            self.demand(chosen)
        else:
            conditional = engine.conditional()
            for node in engine.nodes:
                if node.step.key not in conditional:
                    self.demand(node)

    def demand(self, node: Node, by: str = "") -> None:
        if node.phase is Phase.IDLE:
            node.phase, node.wanted_by = Phase.WAIT_DEPS, by
            for dep in node.deps:
                self.demand(dep, by)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        e = self.e
        while True:
            self._notice_stop()
            if not self.stopping:
                self._start_ready()
            # One durable save for the transitions handled so far, overlapping the work
            # just started (a crash before it is harmless: checks adopt what apply made).
            e.journal.flush()
            if self.running == 0:
                break
            if e.flag.forced or (self.stopping and e.ctx.clock.monotonic() > self.stop_deadline):
                break  # in-flight steps stay recorded as in_flight
            try:
                msg = self.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            self.running -= 1
            self._handle(msg)
        self._finish()

    def _notice_stop(self) -> None:
        e = self.e
        if e.flag.requested and not self.stopping:
            self.stopping = True
            self.interrupted = True
            e.ctx.stop.set()
            self.stop_deadline = e.ctx.clock.monotonic() + e.grace_s
            if self.running:
                e.ctx.events.emit(
                    Event(
                        "run_stopping",
                        message=f"{e.flag.signal_name}: stopping; letting {self.running} "
                        "in-flight call(s) settle (again to stop now)",
                    )
                )

    def _start_ready(self) -> None:
        progress = True
        while progress and not self.stopping:
            progress = False
            for node in self.e.nodes:
                if self.running >= self.e.max_workers:
                    return
                if node.phase is Phase.WAIT_DEPS:
                    if any(d.phase is Phase.CHANGING for d in node.deps):
                        self._blocked(node)
                        progress = True
                    elif all(d.phase is Phase.DONE for d in node.deps):
                        self._start_check(node)
                        progress = True
                    elif self._may_precheck(node):
                        self._start_precheck(node)
                        progress = True
                elif node.phase is Phase.WAIT_NEEDS and all(
                    d.phase is Phase.DONE for d in node.deps + node.needs
                ):
                    self._start_apply(node)
                    progress = True

    def _spawn(
        self,
        node: Node,
        what: Literal["prechecked", "checked", "applied"],
        fn: Callable[[], Any],
    ) -> None:
        self.running += 1

        def work() -> None:
            try:
                self.inbox.put(_Msg(node, what, value=fn()))
            except BaseException as exc:  # everything goes back to the main thread
                self.inbox.put(_Msg(node, what, error=exc))

        threads.start(work, name=f"step-{node.step.key}")

    def _may_precheck(self, node: Node) -> bool:
        """Whether to ask the step `absent` now, while its dependencies are still running:
        apply only, once per walk, for a step that can answer, when the state does not say
        its result was made from these very inputs (then it most likely exists)."""
        step = node.step
        if self.mode != "apply" or node.prechecked or step.read_only:
            return False
        if type(step).absent is Step.absent:
            return False
        rec = self.e.journal.state.steps.get(step.key)
        if rec is None or rec.status != StepStatus.DONE:
            return True
        own = {name: value for name, value in rec.inputs.items() if not name.startswith("@")}
        return own != step.input_hashes()

    def _start_precheck(self, node: Node) -> None:
        e = self.e
        node.phase, node.prechecked = Phase.PRECHECKING, True
        node.started = e.ctx.clock.monotonic()
        step = node.step
        e.ctx.events.emit(Event("step_checking", step=step.key, message=step.describe()))
        view = e.ctx.for_step(step, "")
        self._spawn(node, "prechecked", lambda: step.absent(view))

    def _start_check(self, node: Node) -> None:
        e = self.e
        step = node.step
        if not node.prechecked:  # a precheck announced the check already
            node.started = e.ctx.clock.monotonic()
            e.ctx.events.emit(Event("step_checking", step=step.key, message=step.describe()))
        node.phase = Phase.CHECKING
        node.deadline = e.ctx.clock.monotonic() + e.retry.step_deadline_s
        node.fingerprint, node.hashes = e.fingerprint(node)
        if self.mode == "offline":  # trust the state: recorded outputs of done steps
            self.running += 1
            self.inbox.put(_Msg(node, "checked", value=e.ctx.recorded_outputs.get(step.key)))
            return
        seen = self.observed.get(step.key)
        if seen is not None and seen[0] == node.fingerprint:  # the plan just looked
            self.running += 1
            self.inbox.put(_Msg(node, "checked", value=seen[1]))
            return
        view = e.ctx.for_step(step, node.fingerprint)
        self._spawn(node, "checked", lambda: e.call(node, lambda: step.check(view)))

    def _start_apply(self, node: Node) -> None:
        e = self.e
        if node.early or node.needs:  # it waited for other steps: its time starts now
            node.started = e.ctx.clock.monotonic()
            node.deadline = node.started + e.retry.step_deadline_s
        if node.early:  # its dependencies are done now: their outputs complete the fingerprint
            node.fingerprint, node.hashes = e.fingerprint(node)
        node.phase = Phase.APPLYING
        step = node.step
        rec = e.journal.record(step.key, step.kind)
        rec.status = StepStatus.IN_FLIGHT
        rec.fingerprint, rec.inputs = node.fingerprint, node.hashes
        rec.started_at, rec.run_id = utcnow(), e.ctx.run_id
        e.journal.save()  # durable before the first write call: a crash shows in_flight
        assert node.change is not None
        action = node.change.action
        verb = step.wording(action)
        e.ctx.events.emit(
            Event(
                "step_applying",
                step=step.key,
                message=node.change.reason,
                data={
                    "action": action,
                    "verb": verb.doing,
                    "doing": verb.phrase(step.describe()),
                },
            )
        )
        view = e.ctx.for_step(step, node.fingerprint)

        def apply_then_check() -> Outputs | None:
            node.applied = e.call(node, lambda: step.apply(view), counts=True)
            return e.call(node, lambda: step.check(view))

        self._spawn(node, "applied", apply_then_check)

    def _blocked(self, node: Node) -> None:
        """Plan: a dependency will change, so this step cannot be observed yet."""
        rec = self.e.journal.state.steps.get(node.step.key)
        changing: dict[str, str] = {
            d.step.key: d.change.action if d.change else d.step.change
            for d in node.deps
            if d.phase is Phase.CHANGING
        }
        action, reason = blocked(node.step, rec, changing, self._gone(node))
        self._changing(node, action, reason)

    def _gone(self, node: Node) -> str | None:
        """Why the node's recorded result is missing, when a cleanup step deleted it."""
        e = self.e
        cleaner = cleaned_by(node.step.key, e.index, e.journal.state)
        return gone_reason(cleaner, node.wanted_by) if cleaner else None

    def _decide(
        self, node: Node, found: Outputs | None, fingerprint: str, hashes: dict[str, str]
    ) -> tuple[Action, str]:
        e = self.e
        rec = e.journal.state.steps.get(node.step.key)
        edits = upstream_edits(node.step, e.index, e.journal.state)
        gone = (self._gone(node) or node.step.why_missing()) if found is None else None
        done = {word: action for action, word in DONE_WORDS.items()}
        changed = {
            d.step.key: done.get(d.change.action, d.change.action)
            for d in node.deps
            if d.change is not None and d.change.action not in ("no-op", "read")
        }
        return decide(
            node.step, rec, found, fingerprint, hashes, edits=edits, gone=gone, changed_deps=changed
        )

    def _changing(self, node: Node, action: Action, reason: str) -> None:
        node.phase = Phase.CHANGING
        node.change = Change(node.step.key, node.step.kind, action, reason, node.step.describe())
        self.e.ctx.events.emit(
            Event("step_planned", step=node.step.key, data={"action": action, "reason": reason})
        )
        for need in node.needs:
            self.demand(need, node.step.key)

    # -- results -------------------------------------------------------------------------

    def _handle(self, msg: _Msg) -> None:
        node = msg.node
        if msg.what == "prechecked":  # an answer to act on, or nothing learnt (even an error)
            self._prechecked(node, msg.error is None and msg.value is True)
        elif msg.error is not None:
            self._failed(node, msg.error)
        elif msg.what == "checked":
            self._checked(node, msg.value)
        else:
            self._applied(node, msg.value)

    def _prechecked(self, node: Node, absent: bool) -> None:
        """The result does not exist: decide as a check finding nothing would, and start
        what its apply needs now, while its dependencies are still being made."""
        if not absent:
            node.phase = Phase.WAIT_DEPS  # the check decides, once the dependencies are done
            return
        step = node.step
        rec = self.e.journal.state.steps.get(step.key)
        recorded = {k: v for k, v in (rec.inputs if rec else {}).items() if k.startswith("@")}
        hashes = {**recorded, **step.input_hashes()}  # its dependencies' outputs: as recorded
        action, reason = self._decide(node, None, fingerprint_of(hashes), hashes)
        node.change = Change(step.key, step.kind, action, reason, step.describe())
        node.phase, node.early = Phase.WAIT_NEEDS, True
        for need in node.needs:
            self.demand(need, node.step.key)

    def _checked(self, node: Node, found: Outputs | None) -> None:
        if self.mode == "plan" and found is not None:
            self.e._observed[node.step.key] = (node.fingerprint, found)
        action, reason = self._decide(node, found, node.fingerprint, node.hashes)
        if action == "no-op" or (action == "read" and found is not None):
            assert found is not None
            self._done(node, found, action, reason)
            return
        if self.mode != "apply":
            self._changing(node, action, reason)
            return
        node.change = Change(node.step.key, node.step.kind, action, reason, node.step.describe())
        node.phase = Phase.WAIT_NEEDS
        for need in node.needs:
            self.demand(need, node.step.key)

    def _applied(self, node: Node, found: Outputs | None) -> None:
        if found is None:
            self._failed(
                node,
                StepFailedError(
                    node.step.key,
                    "apply finished but check found no result",
                    resource=node.step.describe(),
                    hint="the result did not appear in Azure; look at the resource in the "
                    "portal or activity log, then run apply again",
                ),
            )
            return
        assert node.change is not None
        action = node.change.action
        self._done(node, found, DONE_WORDS.get(action, action), node.change.reason, action)

    def _done(self, node: Node, found: Outputs, action: str, reason: str, took: str = "") -> None:
        """Record a step's result; `took` is the action its apply took ("" when none)."""
        e = self.e
        step = node.step
        node.phase = Phase.DONE
        e.ctx.results[step.key] = found
        node.change = Change(step.key, step.kind, action, reason, step.describe())  # type: ignore[arg-type]
        if self.mode == "apply":
            rec = e.journal.record(step.key, step.kind)
            applied = node.applied.created() if node.applied is not None else []
            update: dict[str, Any] = {
                "status": StepStatus.DONE,
                "fingerprint": node.fingerprint,
                "inputs": node.hashes,
                "outputs": found.model_dump(mode="json"),
                "created": _merge(rec.created, applied + found.created()),
            }
            if action != "no-op":
                update |= {
                    "finished_at": utcnow(),
                    "run_id": e.ctx.run_id,
                    "last_error": None,
                    "attempts": node.attempts,
                }
            if any(getattr(rec, name) != value for name, value in update.items()):
                for name, value in update.items():
                    setattr(rec, name, value)
                e.journal.dirty = True  # saved once per loop turn (no write when unchanged)
            data: dict[str, Any] = {"action": action}
            verb = step.wording(took or ("read" if action == "no-op" else action))
            node.outcome = "unchanged" if action == "no-op" else verb.counts_as
            if action != "no-op" or step.read_only:  # a read-only step has read, even so
                data |= {"verb": verb.done, "done": verb.phrase(step.describe(), done=True)}
            data |= {
                "outcome": node.outcome,
                "duration_s": round(e.ctx.clock.monotonic() - node.started, 3),
                "attempts": node.attempts,
            }
            e.ctx.events.emit(Event("step_done", step=step.key, data=data))
        else:
            e.ctx.events.emit(
                Event("step_planned", step=step.key, data={"action": action, "reason": reason})
            )

    def _failed(self, node: Node, error: BaseException) -> None:
        e = self.e
        step = node.step
        was_applying = node.phase is Phase.APPLYING
        if isinstance(error, StepInterrupted | CallsStopped):
            node.phase = Phase.INTERRUPTED  # its record stays in_flight: the next run resumes
            node.outcome = "interrupted"
            self.interrupted = True
            e.ctx.events.emit(Event("step_interrupted", step=step.key, message=str(error)))
            return
        node.phase = Phase.FAILED
        node.outcome = "failed"
        self.failures.append((node, error))
        if not self.stopping:  # no new work; in-flight waits stop, calls get grace_s
            self.stopping = True
            e.ctx.stop.set()
            self.stop_deadline = e.ctx.clock.monotonic() + e.grace_s
        if self.mode == "apply":
            rec = e.journal.record(step.key, step.kind)
            if was_applying:  # a failed check leaves a done record done
                rec.status = StepStatus.FAILED
                rec.attempts = node.attempts
            rec.last_error = _error_record(error)
            e.journal.dirty = True
        e.ctx.events.emit(
            Event(
                "step_failed",
                step=step.key,
                message=redact(str(error)),
                data={
                    "duration_s": round(e.ctx.clock.monotonic() - node.started, 3),
                    "attempts": node.attempts,
                    "code": getattr(error, "code", None),
                    "request_id": getattr(error, "request_id", None),
                },
            )
        )

    def _finish(self) -> None:
        """Steps never demanded are reported skipped (not needed); cut-off ones interrupted."""
        e = self.e
        complete = not self.failures and not self.interrupted
        for node in e.nodes:
            if node.phase in (Phase.CHECKING, Phase.APPLYING):
                node.phase = Phase.INTERRUPTED  # abandoned after grace_s: stays in_flight
                node.outcome = "interrupted"
            elif node.phase is Phase.IDLE and self.target is None and complete:
                needed_by = [n.step.key for n in e.nodes if node in n.needs]
                reason = (
                    f"not needed: {', '.join(needed_by)} up to date"
                    if needed_by
                    else ("not needed")
                )
                node.change = Change(
                    node.step.key, node.step.kind, "skip", reason, node.step.describe()
                )
                node.outcome = "skipped"
                e.ctx.events.emit(Event("step_skipped", step=node.step.key, message=reason))

    def raise_outcome(self, command: str) -> None:
        """After a walk: raise the first failure (its hint: run `command` again), or
        Interrupted."""
        if self.e.flag.error is not None:
            raise self.e.flag.error
        if self.failures:
            node, error = self.failures[0]
            if isinstance(error, StepFailedError):
                raise error
            where = node.step.describe()
            raise _step_failed(self.e.failures, node.step.key, where, error, command) from error
        if self.interrupted or self.e.flag.requested:
            raise Interrupted(self.e._interrupted_message())


# -- small helpers --------------------------------------------------------------------


def _merge(old: list[ResourceRef], new: list[ResourceRef]) -> list[ResourceRef]:
    seen = {ref.id for ref in old}
    out = list(old)
    for ref in new:
        if ref.id not in seen:
            seen.add(ref.id)
            out.append(ref)
    return out


def _typed_outputs(cls: type[Step[Any]], rec: StepRecord) -> Outputs:
    if rec.outputs is not None:
        try:
            return cls.outputs_type.model_validate(rec.outputs)
        except ValueError:
            pass
    return Outputs.model_construct(resources=tuple(rec.created))


def _error_record(error: BaseException) -> ErrorRecord:
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


def _step_failed(
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
        hint = _own_hint(error, command)
    return StepFailedError(
        key, redact(str(error)) or type(error).__name__, resource=resource, hint=hint
    )


def _own_hint(error: BaseException, command: str) -> str:
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
