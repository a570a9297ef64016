"""Step `preflight`: every read-only check before anything is created (see steps/preflight)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from batchimage.steps.base import NoOutputs, RunContext, Step, StepInputs
from batchimage.steps.preflight import Report, run_checks


def pinned_version(ctx: RunContext, spec: Any) -> str | None:
    """The Marketplace version a previous run pinned for `spec`'s base image, if any."""
    from batchimage.steps.resolve_image import BasePin, ResolveImage, pinned_for

    return pinned_for(BasePin.of(spec), ctx, ctx.recorded(ResolveImage))


class PreflightInputs(StepInputs):
    """The whole spec, read, not hashed: preflight checks every part of it against Azure,
    and decides nothing (its fingerprint hashes no input)."""

    spec: Any = Field(exclude=True)


class RunPreflight(Step[NoOutputs]):
    """Fail in seconds with actionable messages, or pass (warnings shown) and let the run go on."""

    kind = "run_preflight"
    key = "preflight"
    read_only = True
    given: PreflightInputs

    def __init__(self, spec: Any) -> None:
        self.given = PreflightInputs(spec=spec)
        self.report: Report | None = None
        self.planning = False  # set by `plan`: what the caller may write only warns

    def check(self, ctx: RunContext) -> NoOutputs | None:
        spec = self.given.spec
        report = run_checks(
            ctx, spec, pinned_version=pinned_version(ctx, spec), planning=self.planning
        )
        self.report = report
        problems = [result for result in report.results if result.status != "pass"]
        for result in problems:
            ctx.say(result.line(), check=result.name, status=result.status)
        report.raise_if_failed()  # the failure says the summary
        if problems:  # else the step's done line says "ran preflight checks: 13 passed"
            ctx.say(f"preflight checks: {report.summary()}")
        return NoOutputs()

    def apply(self, ctx: RunContext) -> NoOutputs | None:
        return self.check(ctx)

    def describe(self) -> str:
        if self.report is None:
            return "preflight checks"
        return f"preflight checks: {self.report.summary()}"
