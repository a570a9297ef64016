"""Spec -> ordered steps: the one place that knows the pipeline's order.

`STAGES` lists, in pipeline order, one builder per stage; a builder takes the spec and
returns that stage's steps (none when the spec does not ask for it, several for e.g. one
step per pool). The engine runs steps in this order wherever dependencies allow, and
concurrently where they are independent. The pipeline, in order:

    preflight -> resolve base image -> build resources -> customize -> generalize
    -> capture (gallery version, optional VHD / managed image) -> pools
    -> release / retention of image versions -> cleanup

A stage is added by writing its step module(s) under `batchimage/steps/` and one line
in `STAGES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchimage.steps.base import Step
from batchimage.steps.image_pipeline import stage
from batchimage.steps.pool_pipeline import pool_stage
from batchimage.steps.retention_pipeline import retention_stage

StageBuilder = Callable[[Any], list[Step[Any]]]

STAGES: list[tuple[str, StageBuilder]] = [
    ("preflight", stage("preflight")),
    ("resolve", stage("resolve")),
    ("build", stage("build")),
    ("customize", stage("customize")),
    ("generalize", stage("generalize")),
    ("capture", stage("capture")),
    ("pools", pool_stage),
    ("retention", retention_stage),
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
