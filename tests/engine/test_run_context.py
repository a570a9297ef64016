"""RunContext is its parts composed (steps/base.py): built with keywords, each step's view
shares the run's parts, its events name its step, and it is the edge's `Calls`."""

from __future__ import annotations

import dataclasses

from batchimage.azure.calls import Calls
from batchimage.core.lazy_clients import LazyClients
from batchimage.core.waiter import Waiter
from batchimage.steps.base import RunContext
from batchimage.steps.run_identity import RunIdentity
from batchimage.steps.step_index import StepIndex
from batchimage.steps.step_view import StepView
from batchimage.steps.step_writes import StepWrites
from batchimage.steps.upstream import Upstream
from batchimage.ui import CollectSink
from tests.engine.fakes import FakeClock, Thing, ThingOutputs

PARTS = (RunIdentity, StepView, Upstream, StepWrites, LazyClients, Waiter)


def test_each_field_belongs_to_exactly_one_part() -> None:
    owners: dict[str, list[str]] = {}
    for part in PARTS:
        own = set(part.__dataclass_fields__)
        for base in part.__mro__[1:]:
            own -= set(getattr(base, "__dataclass_fields__", ()))
        for name in own:
            owners.setdefault(name, []).append(part.__name__)
    assert {name: len(parts) for name, parts in owners.items()} == dict.fromkeys(owners, 1)
    assert set(owners) == {f.name for f in dataclasses.fields(RunContext)}
    assert all(issubclass(RunContext, part) for part in PARTS)


def test_a_steps_view_shares_the_run_and_names_its_step() -> None:
    a = Thing("a")
    b = Thing("b", deps=[a])
    sink = CollectSink()
    built: list[object] = []

    def factory() -> object:
        built.append(object())
        return built[-1]

    ctx = RunContext(
        pipeline="p",
        run_id="r",
        events=sink,
        clock=FakeClock(),
        index=StepIndex([a, b]),
        clients_factory=factory,
    )
    view = ctx.for_step(b, "fp-b")
    assert isinstance(view, RunContext)
    assert (view.pipeline, view.run_id, view.step, view.fingerprint) == ("p", "r", b, "fp-b")
    assert view.stop is ctx.stop and view.results is ctx.results and view.clock is ctx.clock
    assert view.clients is ctx.clients and len(built) == 1
    ctx.results["a"] = ThingOutputs(name="a", value="v")
    assert view.output(a).name == "a"
    assert view.tags()["batchimage-step"] == "b"
    view.say("working")
    ctx.say("the run")
    view.poll(iter([None, 1]).__next__, "one probe")
    assert [(e.step, e.message) for e in sink.events] == [
        ("b", "working"),
        (None, "the run"),
        ("b", "waiting for one probe"),
    ]


def test_it_is_what_the_edge_takes() -> None:
    calls: Calls = RunContext(pipeline="p", run_id="r", events=CollectSink())
    assert callable(calls.wait) and callable(calls.poll)
