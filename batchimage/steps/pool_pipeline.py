"""The pool stage of a spec, for `batchimage.steps.stages.STAGES`: per spec pool, in order,

    pool.<id>          CreatePool    create / adopt / update in place / roll out; wait; verify
    pool.<id>.smoke    RunSmokeTest  the spec's smoke test (only when it has one)
    pool.<id>.retire   RetirePool    delete older generations; records the active pool id

Pools take their image from the image pipeline's steps: the gallery image version
(`capture.version`) and the base image it came from (`resolve_image`, for the node agent).
"""

from __future__ import annotations

from typing import Any

from batchimage.steps.base import Step
from batchimage.steps.create_image_version import CreateImageVersion
from batchimage.steps.create_pool import CreatePool
from batchimage.steps.image_pipeline import image_steps
from batchimage.steps.resolve_image import ResolveImage
from batchimage.steps.retire_pool import RetirePool
from batchimage.steps.run_smoke_test import RunSmokeTest


def image_sources(spec: Any) -> tuple[Step[Any], Step[Any]]:
    """The steps whose outputs give a pool its image: (gallery image version, base image)."""
    steps = image_steps(spec)
    version = next(s for s in steps.capture if isinstance(s, CreateImageVersion))
    base = next(s for s in steps.resolve if isinstance(s, ResolveImage))
    return version, base


def pool_stage(spec: Any) -> list[Step[Any]]:
    """The pool steps of `spec` (none without pools)."""
    if not spec.pools:
        return []
    version, base = image_sources(spec)
    out: list[Step[Any]] = []
    for pool in spec.pools:
        create = CreatePool(spec, pool, version, base)
        last: Step[Any] = create
        out.append(create)
        if pool.smoke_test is not None:
            last = RunSmokeTest(spec, pool, create)
            out.append(last)
        out.append(RetirePool(spec, pool, create, last))
    return out
