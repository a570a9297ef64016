"""The image version's early answer against the sandbox: a version under a gallery that is
not there yet is absent (a 404), so the build starts while the gallery and definition are
created; an existing version of this image is never absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchimage.spec import load_spec
from batchimage.steps.base import RunContext, StepIndex
from batchimage.steps.create_image_version import CreateImageVersion
from batchimage.steps.pipeline import build_steps
from batchimage.steps.resolve_image import ResolveImage
from batchimage.ui import NullSink
from tests.pipeline.conftest import admin, cloud, pipeline  # noqa: F401  (fixtures)
from tests.pipeline.harness import Harness


def context(harness: Harness, pipeline_name: str, steps: list[Any]) -> RunContext:
    """A run's context over `steps`, with the harness's clients."""
    return RunContext(
        pipeline=pipeline_name,
        run_id="r",
        events=NullSink(),
        index=StepIndex(steps),
        clients_factory=lambda: harness.clients,
    )


def version_absent(harness: Harness, spec_path: Path) -> bool:
    """Ask the spec's capture.version step `absent`, as the engine does: before the steps it
    depends on are done, once the exact base image it reads is resolved."""
    spec = load_spec(spec_path)
    steps = build_steps(spec)
    step = next(s for s in steps if isinstance(s, CreateImageVersion))
    resolve = next(s for s in steps if isinstance(s, ResolveImage))
    ctx = context(harness, spec.name, steps)
    base = resolve.check(ctx.for_step(resolve, ""))
    assert base is not None
    ctx.results[resolve.key] = base
    return step.absent(ctx.for_step(step, ""))


def test_version_is_absent_until_this_image_is_captured(
    pipeline: Harness,  # noqa: F811
) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    assert version_absent(pipeline, spec_path)  # no gallery yet: the list is a 404
    pipeline.apply(spec_path)
    assert not version_absent(pipeline, spec_path)
    assert pipeline.writes(lambda: pipeline.apply(spec_path)) == 0

    spec_path.write_text(spec_path.read_text().replace("built by batchimage", "built again"))
    assert version_absent(pipeline, spec_path)  # versions exist, none of this image


def test_build_starts_while_the_gallery_and_definition_are_created(
    pipeline: Harness,  # noqa: F811
) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    pipeline.apply(spec_path)
    seen = [(e.kind, e.step) for e in pipeline.events.events]
    # capture.version is asked at once, beside preflight, not after the definition exists
    assert seen.index(("step_checking", "capture.version")) < seen.index(("step_done", "preflight"))
    network_starts = seen.index(("step_applying", "build.network"))
    assert network_starts < seen.index(("step_done", "capture.definition"))
    assert pipeline.outputs(spec_path, "capture.version")["version"] == "1.0.0"


BUILD = ("build.network", "build.nic", "build.vm", "customize.0", "customize.1", "generalize")


def build_absent(harness: Harness, spec_path: Path) -> dict[str, bool]:
    """Each build step's early answer, asked as the engine does: before the steps it depends
    on are done (none of their outputs)."""
    spec = load_spec(spec_path)
    steps = build_steps(spec)
    ctx = context(harness, spec.name, steps)
    return {s.key: s.absent(ctx.for_step(s, "")) for s in steps if s.key in BUILD}


def test_the_build_steps_are_absent_until_the_build_is_made(
    pipeline: Harness,  # noqa: F811
) -> None:
    spec_path = pipeline.spec("quickstart.yaml", lambda data: data.update(cleanup="never"))
    assert build_absent(pipeline, spec_path) == dict.fromkeys(BUILD, True)
    pipeline.apply(spec_path)
    assert build_absent(pipeline, spec_path) == dict.fromkeys(BUILD, False)
    assert pipeline.writes(lambda: pipeline.apply(spec_path)) == 0
