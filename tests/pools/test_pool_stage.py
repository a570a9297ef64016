"""The pool stage in the plan: per spec pool `pool.<id>` (after the image version and the
base image it reads), `pool.<id>.smoke` when the spec has a smoke test, then
`pool.<id>.retire`; between capture and cleanup."""

from __future__ import annotations

from batchimage.spec import load_spec
from batchimage.steps.base import StepIndex
from batchimage.steps.pipeline import build_steps
from tests.pipeline.harness import SPECS


def deps(index: StepIndex, key: str) -> list[str]:
    return [d.key for d in index.direct_deps(index.by_key[key])]


def test_pool_steps_of_the_examples() -> None:
    quick = [s.key for s in build_steps(load_spec(SPECS / "quickstart.yaml"))]
    assert quick[-4:] == ["capture.version", "pool.quickstart", "pool.quickstart.retire", "cleanup"]
    steps = build_steps(load_spec(SPECS / "two-pools.yaml"))
    keys = [s.key for s in steps if s.key.startswith("pool.")]
    assert keys == [
        "pool.interactive", "pool.interactive.smoke", "pool.interactive.retire",
        "pool.batch-spot", "pool.batch-spot.smoke", "pool.batch-spot.retire",
    ]  # fmt: skip
    index = StepIndex(steps)
    assert deps(index, "pool.interactive") == ["capture.version", "resolve_image"]
    assert deps(index, "pool.interactive.smoke") == ["pool.interactive"]
    assert deps(index, "pool.interactive.retire") == ["pool.interactive", "pool.interactive.smoke"]
    assert not [k for k in deps(index, "cleanup") if k.startswith("pool.")]


def test_a_spec_without_pools_has_no_pool_steps() -> None:
    spec = load_spec(SPECS / "quickstart.yaml")
    spec.pools = []
    assert not [s for s in build_steps(spec) if s.key.startswith("pool.")]
