"""Reading other steps (steps/upstream.py, steps/step_index.py): only a step's dependencies,
only once they have outputs; what a previous run recorded."""

from __future__ import annotations

import pytest

from batchimage.steps.step_index import StepIndex
from batchimage.steps.upstream import Upstream
from tests.engine.fakes import Probe, Thing, ThingOutputs


def made(name: str) -> ThingOutputs:
    return ThingOutputs(name=name, value="v")


def steps() -> tuple[Probe, Thing, Thing, Thing]:
    probe = Probe("probe")
    a = Thing("a", deps=[probe])
    b = Thing("b")
    c = Thing("c", deps=[a], needs=[b])
    return probe, a, b, c


def test_the_index_finds_steps_by_key_by_class_and_their_direct_dependencies() -> None:
    probe, a, b, c = steps()
    index = StepIndex([probe, a, b, c])
    assert index.by_key["b"] is b
    assert index.resolve(Thing) == [a, b, c]
    assert index.resolve(b) == [b]
    assert index.direct_deps(c) == [a, b]
    assert index.direct_deps(c, with_needs=False) == [a]
    assert index.direct_deps(a) == [probe]


def test_a_step_reads_its_dependencies_outputs_typed() -> None:
    probe, a, b, c = steps()
    results = {"a": made("a"), "b": made("b")}
    view = Upstream(index=StepIndex([probe, a, b, c]), results=dict(results)).for_step(c, "f")
    assert view.output(a) == results["a"]
    assert view.output(b) == results["b"]  # apply_needs count


def test_a_step_may_not_read_a_step_it_does_not_depend_on() -> None:
    probe, a, b, c = steps()
    view = Upstream(index=StepIndex([probe, a, b, c]), results={"probe": made("p")})
    with pytest.raises(RuntimeError, match="step c reads probe but does not depend on it"):
        view.for_step(c, "").output(probe)
    assert view.output(probe) == made("p")  # the run itself reads any step


def test_outputs_not_made_yet_and_a_class_naming_many_steps_are_refused() -> None:
    probe, a, b, c = steps()
    run = Upstream(index=StepIndex([probe, a, b, c]), results={"a": made("a")})
    with pytest.raises(RuntimeError, match="step a reads probe, which has no outputs yet"):
        run.for_step(a, "").output(probe)
    with pytest.raises(RuntimeError, match="the run reads b, which has no outputs yet"):
        run.outputs(Thing)
    run.results.update(b=made("b"), c=made("c"))
    assert [out.name for out in run.outputs(Thing)] == ["a", "b", "c"]
    with pytest.raises(RuntimeError, match=r"names 3 steps; use outputs\(\)"):
        run.output(Thing)


def test_recorded_outputs_are_the_steps_own_by_default() -> None:
    probe, a, b, c = steps()
    run = Upstream(index=StepIndex([probe, a, b, c]), recorded_outputs={"a": made("old")})
    assert run.for_step(a, "").recorded() == made("old")
    assert run.recorded(a) == made("old")
    assert run.recorded(b) is None
    assert run.recorded(Thing) is None  # three steps: none of them in particular
    assert run.recorded() is None  # the run is no step


def test_views_share_the_results_the_engine_adds() -> None:
    probe, a, b, c = steps()
    run = Upstream(index=StepIndex([probe, a, b, c]))
    view = run.for_step(a, "f")
    assert (view.step, view.fingerprint, view.step_key) == (a, "f", "a")
    run.results["probe"] = made("p")
    assert view.output(probe) == made("p")
