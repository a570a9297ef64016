"""The `Engine`: one pipeline's steps against Azure, as plan, apply and destroy. It holds
the run's pieces (the steps as a graph, the run context, the journal, the retry policy,
the failures, the stop flag) and hands each command to the module that does it: the walk
(`walk`), destroy (`destroy`); it journals and announces each run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from batchimage.core.errors import Interrupted, LockLostError
from batchimage.core.events import Event
from batchimage.core.failures import Failures
from batchimage.core.refs import ResourceRef
from batchimage.core.retry import RetryPolicy
from batchimage.engine import destroy, graph, retry, wording
from batchimage.engine.graph import Node, Phase
from batchimage.engine.result import OUTCOMES, Change, RunResult
from batchimage.engine.signals import StopFlag
from batchimage.engine.walk import Walk
from batchimage.state import Journal
from batchimage.steps.base import Outputs, RunContext, Step, StepIndex

T = TypeVar("T")


class Engine:
    """Runs one pipeline's steps against Azure; see the package docstring."""

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
        self.adopted: int | None = None  # resources `adopt_leftovers` added (None: not asked)
        # What the last plan's checks found, per step: (fingerprint, outputs); an apply that
        # follows at once (`reuse_plan`) takes these instead of asking Azure again.
        self.plan_found: dict[str, tuple[str, Outputs]] = {}
        self.nodes = graph.build_nodes(self.index)
        self.ctx.recorded_outputs.update(graph.recorded_outputs(self.nodes, journal.state))

    # -- public API ----------------------------------------------------------------------

    def plan(
        self, *, offline: bool = False, target: str | None = None, command: str = "plan"
    ) -> list[Change]:
        """What apply would do, per step in order (read-only; `offline`: from state alone);
        a failure's hint says to run `command` again (apply, when it plans first)."""
        self.plan_found = {}
        walk = Walk(self, "offline" if offline else "plan", target)
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
        observed, self.plan_found = (self.plan_found if reuse_plan else {}), {}
        with self._recorded_run(command, result):
            walk = Walk(self, "apply", target, observed)
            walk.run()
            result.changes = [n.change for n in self.nodes if n.change is not None]
            result.outcomes = {n.step.key: n.outcome for n in self.nodes if n.outcome}
            walk.raise_outcome(command)
            if target is None:
                destroy.destroy_orphans(self, result)
        return result

    def destroy(self) -> RunResult:
        """Delete what this pipeline created (state says so, or Azure by the pipeline's
        marks: `adopt_leftovers`), dependants first."""
        self.adopt_leftovers()
        result = RunResult(self.ctx.run_id)
        with self._recorded_run("destroy", result):
            destroy.destroy_all(self, result)
        return result

    def adopt_leftovers(self) -> int:
        """Before destroy: add to each step's record what its `leftovers` finds in Azure
        and no record lists (a lost state, a step cut short); kept in memory until destroy
        saves. Returns how many resources were added (asked once per engine)."""
        if self.adopted is None:
            destroy.adopt_leftovers(self)
        assert self.adopted is not None
        return self.adopted

    def destroy_plan(self, *, observe: bool = False) -> list[tuple[str, ResourceRef]]:
        """What destroy would delete, per resource, in the order it deletes; `observe`: only
        what still exists (read-only; a resource that cannot be read counts as there)."""
        return destroy.planned(self, observe=observe)

    def orphans(self) -> list[str]:
        """Steps in the state, no longer in the spec, that created resources (to delete)."""
        return destroy.orphans(self.journal.state, self.index)

    def conditional(self) -> set[str]:
        """Keys of steps that run only when a step that needs them applies."""
        return graph.conditional(self.nodes)

    # -- used by the walk and destroy ----------------------------------------------------

    def fingerprint(self, node: Node) -> tuple[str, dict[str, str]]:
        """The effective fingerprint: own input hashes + hashes of dependency outputs."""
        return graph.fingerprint(node, self.index, self.ctx.results)

    def call(self, node: Node, fn: Callable[[], T], *, counts: bool = False) -> T:
        """Run `fn` with step-level retry of transient failures (see RetryPolicy); `counts`:
        each try is an attempt of the step's apply."""
        return retry.call(
            node, fn, ctx=self.ctx, policy=self.retry, failures=self.failures, counts=counts
        )

    # -- a run, journaled and announced --------------------------------------------------

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

    def _orphan_change(self, key: str) -> Change:
        rec = self.journal.state.steps[key]
        return Change(key, rec.kind, "delete", wording.orphan(len(rec.created)))

    def _emit_start(self, command: str) -> None:
        self.ctx.events.emit(
            Event(
                "run_started",
                message=wording.run_started(
                    command, self.ctx.pipeline, len(self.nodes), self.ctx.run_id
                ),
                data={
                    "command": command,
                    "pipeline": self.ctx.pipeline,
                    "run_id": self.ctx.run_id,
                    "steps": [n.step.key for n in self.nodes],
                },
            )
        )
        if self.journal.stale is not None:
            message = wording.took_over(self.journal.stale.describe())
            self.ctx.events.emit(Event("run_note", message=message))

    def _emit_end(self, command: str, outcome: str, result: RunResult) -> None:
        if outcome != "ok" and command == "apply":  # steps due to run that never finished
            for node in self.nodes:
                due = node.phase is not Phase.IDLE or node.change is not None
                if due and node.step.key not in result.outcomes:
                    result.outcomes[node.step.key] = node.outcome or "not run"
        always = OUTCOMES[:4] if command == "apply" else ()
        summary = result.summary(always=always)
        self.ctx.events.emit(
            Event(
                "run_finished",
                message=wording.run_finished(command, outcome, result.duration_s, summary),
                data={
                    "result": outcome,
                    "counts": result.counts(),
                    "duration_s": result.duration_s,
                },
            )
        )
