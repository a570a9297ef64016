"""The steps of one run, found by key or by class, and which steps one depends on directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchimage.steps.base import Step


@dataclass
class StepIndex:
    """The steps of one run, found by key or by class (shared by every context view)."""

    steps: list[Step[Any]]
    by_key: dict[str, Step[Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_key = {step.key: step for step in self.steps}

    def resolve(self, ref: type[Step[Any]] | Step[Any]) -> list[Step[Any]]:
        """The steps `ref` names: itself, or every step of that class."""
        if not isinstance(ref, type):
            return [ref]
        return [step for step in self.steps if isinstance(step, ref)]

    def direct_deps(self, step: Step[Any], *, with_needs: bool = True) -> list[Step[Any]]:
        """The steps `step` depends on directly (depends_on and reads, and apply_needs if
        asked)."""
        refs = list(step.depends_on) + list(step.reads)
        refs += list(step.apply_needs) if with_needs else []
        out: list[Step[Any]] = []
        for ref in refs:
            for dep in self.resolve(ref):
                if dep is not step and dep not in out:
                    out.append(dep)
        return out
