"""Which step a view of the run serves (none: the run itself) and that step's effective
fingerprint; `for_step` makes the view for one step call."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from batchimage.steps.base import Step


@dataclass(kw_only=True)
class StepView:
    """The step a context is a view for, and its fingerprint (its inputs and dependencies')."""

    step: Step[Any] | None = None
    fingerprint: str = ""

    def for_step(self, step: Step[Any], fingerprint: str) -> Self:
        """The view of this context for one step call (every other field shared)."""
        return replace(self, step=step, fingerprint=fingerprint)

    @property
    def step_key(self) -> str | None:
        """The key of the step this view serves (None: the run)."""
        return self.step.key if self.step else None
