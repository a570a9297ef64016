"""One walk over the steps: plan (observe), offline plan (state only) or apply.

Per step: wait for its dependencies, check (read-only), decide (`batchimage.plan.decide`),
then, in apply, wait for what its apply needs, apply, check again (unless the step's apply
hands back what its last read saw: `Step.apply_observes`) and record. Independent
steps run concurrently on at most `max_workers` threads; their results come back to the
main thread, which alone touches the journal, saving after every step transition. A
failure or a signal stops new work; in-flight calls get `grace_s` to settle.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from batchimage.core import threads
from batchimage.core.errors import CallsStopped, StepFailedError
from batchimage.core.events import Event
from batchimage.core.hashing import fingerprint_of
from batchimage.core.redact import redact
from batchimage.core.waiting import StepInterrupted
from batchimage.engine import journal, signals, wording
from batchimage.engine.graph import Node, Phase
from batchimage.engine.result import Change
from batchimage.plan import (
    DONE_WORDS,
    Action,
    blocked,
    cleaned_by,
    decide,
    gone_reason,
    upstream_edits,
)
from batchimage.state import StepStatus
from batchimage.steps.base import Outputs, Step

if TYPE_CHECKING:
    from batchimage.engine.coordinator import Engine


@dataclass
class Msg:
    node: Node
    what: Literal["prechecked", "checked", "applied"]
    value: Any = None  # prechecked: absent (bool); checked / applied: the outputs found
    error: BaseException | None = None


class Walk:
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
        self.inbox: queue.Queue[Msg] = queue.Queue()
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
                raise wording.no_step(target, [n.step.key for n in engine.nodes])
            self.demand(chosen)
        else:
            conditional = engine.conditional()
            for node in engine.nodes:
                if node.step.key not in conditional:
                    self.demand(node)

    def demand(self, node: Node, by: str = "") -> None:
        """Want `node` (for `by`'s apply, if any) and its dependencies; in apply, also the
        `eager` steps its apply needs, to run while its dependencies are made."""
        if node.phase is Phase.IDLE:
            node.phase, node.wanted_by = Phase.WAIT_DEPS, by
            for dep in node.deps:
                self.demand(dep, by)
            if self.mode == "apply":
                for need in node.needs:
                    if need.step.eager:
                        self.demand(need, node.step.key)

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
                message = wording.stopping(e.flag.signal_name, self.running)
                e.ctx.events.emit(Event("run_stopping", message=message))

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
                self.inbox.put(Msg(node, what, value=fn()))
            except BaseException as exc:  # everything goes back to the main thread
                self.inbox.put(Msg(node, what, error=exc))

        threads.start(work, name=f"step-{node.step.key}")

    def _may_precheck(self, node: Node) -> bool:
        """Whether to ask the step `absent` now, while its dependencies are still running:
        apply only, once per walk, for a step that can answer, when the state does not say
        its result was made from these very inputs (then it most likely exists); at once
        when the answer would start what its apply needs, else once a dependency applies
        (the answer is in before that one is done, and not among the run's first reads)."""
        step = node.step
        if self.mode != "apply" or node.prechecked or step.read_only:
            return False
        if type(step).absent is Step.absent:
            return False
        starts = any(not need.step.eager for need in node.needs)
        if not starts and not any(d.phase is Phase.APPLYING for d in node.deps):
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
            self.inbox.put(Msg(node, "checked", value=e.ctx.recorded_outputs.get(step.key)))
            return
        seen = self.observed.get(step.key)
        if seen is not None and seen[0] == node.fingerprint:  # the plan just looked
            self.running += 1
            self.inbox.put(Msg(node, "checked", value=seen[1]))
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
        journal.mark_in_flight(e.journal, node, e.ctx.run_id)  # a crash shows in_flight
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
            if step.apply_observes and node.applied is not None:
                return node.applied  # read back at the apply's end: no second read
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

    def _handle(self, msg: Msg) -> None:
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
            self.e.plan_found[node.step.key] = (node.fingerprint, found)
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
            self._failed(node, wording.no_result(node.step.key, node.step.describe()))
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
            journal.record_done(e.journal, node, found, action, e.ctx.run_id)
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
            journal.record_failed(e.journal, node, error, was_applying=was_applying)
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
                reason = wording.not_needed([n.step.key for n in e.nodes if node in n.needs])
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
            raise wording.step_failed(
                self.e.failures, node.step.key, where, error, command
            ) from error
        if self.interrupted or self.e.flag.requested:
            raise signals.stopped(self.e.flag, self.e.journal)
