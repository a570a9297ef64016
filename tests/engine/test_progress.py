"""Progress wording: each step's verb, the run summary, and what a wait says (and when)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import batchimage.steps.pipeline  # noqa: F401  (registers every step kind of the pipeline)
from batchimage.engine.result import RunResult
from batchimage.steps.base import STEP_KINDS, RunContext, Step
from batchimage.steps.cleanup_build import CleanupBuild
from batchimage.steps.create_gallery import CreateGallery
from batchimage.steps.generalize_vm import GeneralizeInputs, GeneralizeVm
from batchimage.steps.run_preflight import RunPreflight
from batchimage.steps.run_smoke_test import RunSmokeTest
from batchimage.steps.verbs import CREATE, DELETE, RUN, UPDATE, Verb
from batchimage.ui import CollectSink
from tests.engine.fakes import FakeClock, FakeCloud, Harness, Probe, Thing


def words(step: type[Step[Any]] | Step[Any], action: str = "create") -> tuple[str, str, str]:
    """(doing, done, counts as) for `action`; a class is asked as the base Step would."""
    verb = Step.wording(step, action) if isinstance(step, type) else step.wording(action)  # type: ignore[arg-type]
    return verb.doing, verb.done, verb.counts_as


def test_a_verb_reads_with_a_noun_phrase_or_a_verb_phrase() -> None:
    assert CREATE.phrase("gallery g") == "creating gallery g"
    assert CREATE.phrase("gallery g", done=True) == "created gallery g"
    assert DELETE.phrase("delete build resources") == "deleting build resources"
    assert DELETE.phrase("delete build resources", done=True) == "deleted build resources"
    assert RUN.phrase("customize step 0 'tools'", done=True) == "ran customize step 0 'tools'"


def test_each_step_kind_has_a_verb_that_fits_what_its_apply_does() -> None:
    kinds = {kind: cls for kind, cls in STEP_KINDS.items() if not kind.startswith("test_")}
    assert words(kinds["create_gallery"], "create") == ("creating", "created", "created")
    assert words(kinds["create_pool"], "update") == ("updating", "updated", "changed")
    assert words(kinds["create_managed_image"], "replace") == ("replacing", "replaced", "changed")
    assert words(kinds["cleanup_build"]) == ("deleting", "deleted", "deleted")
    assert words(kinds["run_customize"]) == ("running", "ran", "changed")
    assert words(kinds["run_customize"], "update") == ("running", "ran", "changed")
    assert words(kinds["generalize_vm"]) == ("generalizing", "generalized", "changed")
    assert words(kinds["retire_pool"]) == ("retiring", "retired", "deleted")
    assert words(kinds["upload_vhd"]) == ("uploading", "uploaded", "created")
    assert words(kinds["export_vhd"]) == ("exporting", "exported", "created")
    assert words(kinds["capture_classic"]) == ("capturing", "captured", "created")
    # read-only steps and tests change nothing, whatever their verb
    assert words(kinds["run_preflight"], "read") == ("running", "ran", "read")
    assert words(kinds["resolve_image"], "read") == ("resolving", "resolved", "read")
    assert words(kinds["run_smoke_test"]) == ("running", "ran", "read")
    # no step of the pipeline is left "creating" something its apply deletes or runs
    for kind, cls in kinds.items():
        if not kind.startswith("create_"):
            assert cls.verb is not None, f"{kind} has no verb of its own"
    assert CleanupBuild.verb is DELETE and RunPreflight.verb is RUN
    assert CreateGallery.verb is None and RunSmokeTest.verb is not None


def test_generalize_off_deallocates() -> None:
    step = GeneralizeVm.__new__(GeneralizeVm)
    step.given = GeneralizeInputs.model_construct(generalize={"enabled": False})
    assert words(step) == ("deallocating", "deallocated", "changed")
    step.given = GeneralizeInputs.model_construct(generalize={"enabled": True})
    assert words(step) == ("generalizing", "generalized", "changed")


def test_summary_counts_every_outcome_and_always_the_main_four() -> None:
    result = RunResult(
        "r",
        outcomes={
            "a": "created",
            "b": "created",
            "c": "changed",
            "cleanup": "deleted",
            "p": "read",
            "s": "skipped",
        },
    )
    assert result.summary() == "2 created, 1 changed, 1 deleted, 0 unchanged, 1 read, 1 skipped"
    assert RunResult("r", outcomes={"a": "unchanged"}).summary() == (
        "0 created, 0 changed, 0 deleted, 1 unchanged"
    )
    assert RunResult("r", outcomes={"a": "deleted"}).summary(always=()) == "1 deleted"
    assert RunResult("r").summary(always=()) == "nothing to do"


def test_apply_reports_each_steps_outcome_and_sums_them_up(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    probe = Probe("preflight")
    steps = [probe, Thing("a", deps=[probe]), Thing("b")]
    first = h.apply(steps)
    assert first.outcomes == {"preflight": "read", "a": "created", "b": "created"}
    done = {e.step: e.data for e in h.sink.events if e.kind == "step_done"}
    assert done["a"]["done"] == "created thing a" and done["a"]["outcome"] == "created"
    assert done["preflight"]["done"] == "read preflight"
    applying = {e.step: e.data for e in h.sink.events if e.kind == "step_applying"}
    assert applying["a"] == {"action": "create", "verb": "creating", "doing": "creating thing a"}
    end = [e for e in h.sink.events if e.kind == "run_finished"][-1]
    assert end.message.startswith("apply complete in ")
    assert end.message.endswith(": 2 created, 0 changed, 0 deleted, 0 unchanged, 1 read")
    assert end.data["counts"] == {"created": 2, "read": 1}

    again = h.apply([probe, Thing("a", "v2", deps=[probe]), Thing("b")])
    assert again.outcomes == {"preflight": "unchanged", "a": "changed", "b": "unchanged"}
    assert again.summary() == "0 created, 1 changed, 0 deleted, 2 unchanged"


def test_a_failed_apply_says_what_failed_and_what_did_not_run(tmp_path: Path) -> None:
    from batchimage.core.errors import PermanentAzureError, StepFailedError

    cloud = FakeCloud()
    cloud.world.fail("b", "apply", PermanentAzureError("broken", code="BadRequest"))
    h = Harness(tmp_path, cloud)
    a = Thing("a")
    b = Thing("b", deps=[a])
    with pytest.raises(StepFailedError):
        h.apply([a, b, Thing("c", deps=[b])])
    end = [e for e in h.sink.events if e.kind == "run_finished"][-1]
    assert end.data["result"] == "failed"
    assert end.message.startswith("apply failed after ")
    assert end.message.endswith(
        ": 1 created, 0 changed, 0 deleted, 0 unchanged, 1 failed, 1 not run"
    )


def context(clock: FakeClock) -> tuple[RunContext, CollectSink]:
    sink = CollectSink()
    ctx = RunContext(pipeline="p", run_id="r", events=sink, clock=clock)
    return ctx, sink


def test_a_wait_that_is_over_at_once_says_nothing() -> None:
    ctx, sink = context(FakeClock())
    assert ctx.poll(lambda: "here", "the thing") == "here"
    assert sink.events == []


def test_a_long_wait_says_so_once_then_now_and_then_with_the_time() -> None:
    clock = FakeClock()
    ctx, sink = context(clock)
    start = clock.now
    ready = start + 200

    def probe() -> bool | None:
        return True if clock.now >= ready else None

    ctx.poll(probe, "VM v to start", interval_s=5)
    notes = [(e.message, e.data["elapsed_s"]) for e in sink.events]
    assert [e.kind for e in sink.events] == ["step_waiting"] * len(notes)
    assert notes == [
        ("waiting for VM v to start", 0.0),
        ("still waiting for VM v to start", 30.0),
        ("still waiting for VM v to start", 90.0),
        ("still waiting for VM v to start", 150.0),
    ]


def test_an_interrupted_wait_stops_without_more_notes() -> None:
    ctx, sink = context(FakeClock())
    ctx.stop = threading.Event()
    calls = []

    def probe() -> None:
        calls.append(1)
        if len(calls) == 3:
            ctx.stop.set()

    from batchimage.core.waiting import StepInterrupted

    with pytest.raises(StepInterrupted):
        ctx.poll(probe, "ever", interval_s=1)
    assert [e.message for e in sink.events] == ["waiting for ever"]


def test_verb_fallback_for_an_unknown_action() -> None:
    assert isinstance(Thing("x").wording("frobnicate"), Verb)
    assert Thing("x").wording("update") is UPDATE
