"""What a step reads of other steps: their outputs in this run and what a previous run
recorded, only of the steps it depends on (`depends_on`, `reads`, `apply_needs`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, cast

from batchimage.steps.step_index import StepIndex
from batchimage.steps.step_view import StepView

if TYPE_CHECKING:
    from batchimage.steps.base import Outputs, Step

OutT = TypeVar("OutT", bound="Outputs")


@dataclass(kw_only=True)
class Upstream(StepView):
    """The run's steps (`index`), their outputs so far (`results`) and those a previous run
    recorded (`recorded_outputs`), shared by every view; a step's view reads only its
    dependencies'."""

    index: StepIndex = field(default_factory=lambda: StepIndex([]))
    results: dict[str, Outputs] = field(default_factory=dict)
    recorded_outputs: dict[str, Outputs] = field(default_factory=dict)

    def output(self, ref: type[Step[OutT]] | Step[OutT]) -> OutT:
        """The outputs of one step this step depends on, typed as that step's Outputs."""
        found = self.outputs(ref)
        if len(found) != 1:
            raise RuntimeError(f"{self._me()}: {ref!r} names {len(found)} steps; use outputs()")
        return found[0]

    def outputs(self, ref: type[Step[OutT]] | Step[OutT]) -> list[OutT]:
        """The outputs of every step `ref` names (e.g. all pools), in plan order."""
        me = self.step
        allowed = self.index.direct_deps(me) if me is not None else self.index.steps
        out: list[OutT] = []
        for dep in self.index.resolve(ref):
            if me is not None and dep not in allowed:
                raise RuntimeError(f"{self._me()} reads {dep.key} but does not depend on it")
            if dep.key not in self.results:
                raise RuntimeError(f"{self._me()} reads {dep.key}, which has no outputs yet")
            out.append(cast(OutT, self.results[dep.key]))
        return out

    def recorded(self, ref: type[Step[OutT]] | Step[OutT] | None = None) -> OutT | None:
        """Outputs a previous run recorded for `ref` (default: this step), e.g. a pinned version."""
        steps = self.index.resolve(ref) if ref is not None else [self.step] if self.step else []
        if len(steps) != 1:
            return None
        return cast("OutT | None", self.recorded_outputs.get(steps[0].key))

    def _me(self) -> str:
        return f"step {self.step_key}" if self.step else "the run"
