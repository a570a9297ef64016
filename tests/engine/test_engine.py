"""Engine logic with small in-test steps: idempotence, retry, fingerprints, concurrency."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError

from batchimage.core.errors import Interrupted, StepFailedError, UsageError
from batchimage.core.failures import Failures
from batchimage.core.ownership import Marks
from batchimage.core.refs import ResourceRef
from batchimage.core.retry import RetryPolicy
from batchimage.core.waiting import Clock
from batchimage.engine.signals import StopFlag
from batchimage.state import StepStatus
from batchimage.steps.base import RunContext
from tests.engine.fakes import (
    KIND,
    FakeCloud,
    Harness,
    Probe,
    Thing,
    ThingOutputs,
    World,
    cloud_of,
    permanent,
    transient,
)


def chain(value_a: str = "v1", value_c: str = "v1") -> list[Thing]:
    """a -> b -> c, and d independent."""
    a = Thing("a", value_a)
    b = Thing("b", deps=[a])
    c = Thing("c", value_c, deps=[b])
    d = Thing("d")
    return [a, b, c, d]


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_first_apply_creates_everything_second_applies_nothing(h: Harness) -> None:
    first = h.apply(chain())
    assert [(c.key, c.action) for c in first.changes] == [
        ("a", "created"),
        ("b", "created"),
        ("c", "created"),
        ("d", "created"),
    ]
    assert h.cloud.world.get("c")["value"] == "v1(v1(v1))"
    writes = h.cloud.world.total_writes()
    assert writes == 4

    second = h.apply(chain())
    assert {c.action for c in second.changes} == {"no-op"}
    assert h.cloud.world.total_writes() == writes  # zero write calls
    state = h.state()
    assert {k: r.status for k, r in state.steps.items()} == dict.fromkeys("abcd", StepStatus.DONE)
    assert [r.result for r in state.runs] == ["ok", "ok"]


def test_untagged_resources_rely_on_the_recorded_fingerprint(h: Harness) -> None:
    steps = [Thing("a", tagged=False), Thing("b", tagged=False)]
    h.apply(steps)
    # apply reported what it created even though check cannot read it back from tags
    assert [r.created_by_run for r in h.state().steps["a"].created] == [h.last.ctx.run_id]
    h.apply([Thing("a", tagged=False), Thing("b", tagged=False)])
    assert h.cloud.world.total_writes() == 2
    h.apply([Thing("a", "v2", tagged=False), Thing("b", tagged=False)])
    assert h.cloud.world.writes == {"a": 2, "b": 1}


def test_input_change_reruns_the_step_and_its_dependants_only(h: Harness) -> None:
    h.apply(chain())
    plan = h.plan(chain(value_a="v2"))
    assert {k: c.action for k, c in plan.items()} == {
        "a": "update",
        "b": "update",
        "c": "update",
        "d": "no-op",
    }
    assert plan["a"].reason == "input value changed"
    assert "a changes first" in plan["b"].reason
    result = h.apply(chain(value_a="v2"))
    assert {c.key: c.action for c in result.changes} == {
        "a": "updated",
        "b": "updated",
        "c": "updated",
        "d": "no-op",
    }
    assert h.cloud.world.writes == {"a": 2, "b": 2, "c": 2, "d": 1}
    assert h.cloud.world.get("c")["value"] == "v1(v1(v2))"

    # a change at the end of the chain touches nothing upstream
    h.apply(chain(value_a="v2", value_c="v9"))
    assert h.cloud.world.writes == {"a": 2, "b": 2, "c": 3, "d": 1}


def test_dependant_is_not_rerun_when_upstream_outputs_did_not_change(h: Harness) -> None:
    h.apply(chain())
    a = Thing("a", note="only a comment")  # an input that does not reach a's outputs
    b = Thing("b", deps=[a])
    result = h.apply([a, b, Thing("c", deps=[b]), Thing("d")])
    assert {c.key: c.action for c in result.changes} == {
        "a": "updated",
        "b": "no-op",
        "c": "no-op",
        "d": "no-op",
    }
    assert h.cloud.world.writes == {"a": 2, "b": 1, "c": 1, "d": 1}


def test_transient_error_is_retried_honouring_retry_after(h: Harness) -> None:
    h.cloud.world.fail("b", "apply", transient(retry_after=7), transient(retry_after=3.5))
    result = h.apply(chain())
    assert result.count("created") == 4
    assert h.clock.sleeps == [7, 3.5]
    assert h.state().steps["b"].attempts == 3
    retries = [e for e in h.sink.events if e.kind == "step_retrying"]
    assert [(e.step, e.data["attempt"], e.data["delay_s"]) for e in retries] == [
        ("b", 1, 7),
        ("b", 2, 3.5),
    ]


def test_backoff_without_retry_after_grows_with_jitter_and_is_capped(h: Harness) -> None:
    h.cloud.world.fail("a", "apply", *[transient() for _ in range(5)])
    policy = RetryPolicy(max_attempts=6, initial_delay_s=2, max_delay_s=10, step_deadline_s=1e6)
    h.apply(chain(), retry=policy)
    bases = [2, 4, 8, 10, 10]
    assert len(h.clock.sleeps) == 5
    for slept, base in zip(h.clock.sleeps, bases, strict=True):
        assert base / 2 <= slept <= base


def test_transient_errors_stop_at_max_attempts(h: Harness) -> None:
    h.cloud.world.fail("a", "apply", *[transient() for _ in range(9)])
    with pytest.raises(StepFailedError) as info:
        h.apply(chain(), retry=RetryPolicy(max_attempts=3, initial_delay_s=1))
    assert len(h.clock.sleeps) == 2
    assert "run apply again later" in str(info.value)
    assert h.state().steps["a"].status == StepStatus.FAILED
    assert h.state().steps["a"].attempts == 3


def test_an_engine_knows_no_cloud_but_what_it_is_given(h: Harness) -> None:
    bare = Failures()  # the default: no exception mapped, the engine's own hints
    h.cloud.world.fail("a", "apply", ServiceRequestError("connection dropped"))
    with pytest.raises(StepFailedError, match="this is a bug in batchimage"):
        h.apply(chain(), failures=bare)
    h.cloud.world.fail("a", "apply", permanent("AuthorizationFailed"))
    with pytest.raises(StepFailedError, match="next: fix the cause above, then run apply"):
        h.apply(chain(), failures=bare)
    assert h.clock.sleeps == []
    h.cloud.world.fail("a", "apply", ServiceRequestError("connection dropped"))
    h.apply(chain())  # the commands' (Azure's): a dropped connection is retried
    assert len(h.clock.sleeps) == 1


def test_step_deadline_stops_retrying_before_a_long_wait(h: Harness) -> None:
    h.cloud.world.fail("a", "apply", transient(retry_after=5), transient(retry_after=500))
    policy = RetryPolicy(max_attempts=10, step_deadline_s=60)
    with pytest.raises(StepFailedError, match="TooManyRequests"):
        h.apply(chain(), retry=policy)
    assert h.clock.sleeps == [5]  # waiting 500 s would pass the 60 s deadline


def test_permanent_error_is_not_retried_and_names_everything(h: Harness) -> None:
    h.cloud.world.fail("b", "apply", permanent())
    with pytest.raises(StepFailedError) as info:
        h.apply(chain())
    text = str(info.value)
    assert "step b failed on thing b" in text
    assert "InvalidParameter" in text and "request id req-400" in text
    assert "operation PUT thing" in text and "correlation id corr-400" in text
    assert "next: fix the spec field" in text
    assert h.clock.sleeps == []
    state = h.state()
    assert state.steps["b"].status == StepStatus.FAILED
    assert state.steps["b"].last_error is not None
    assert (state.steps["b"].last_error.code, state.steps["b"].last_error.request_id) == (
        "InvalidParameter",
        "req-400",
    )
    assert "c" not in state.steps or state.steps["c"].status != StepStatus.DONE
    assert h.cloud.world.get("c") is None
    assert state.runs[-1].result == "failed"

    # fixed: the next run resumes at b; a is not touched again
    result = h.apply(chain())
    assert {c.key: c.action for c in result.changes} == {
        "a": "no-op",
        "b": "created",
        "c": "created",
        "d": "no-op",
    }
    assert h.cloud.world.writes["a"] == 1


def test_apply_that_leaves_nothing_fails_the_step(h: Harness) -> None:
    h.cloud.behaviour["b"] = {"does_nothing": True}
    with pytest.raises(StepFailedError, match="apply finished but check found no result"):
        h.apply(chain())
    assert h.state().steps["b"].status == StepStatus.FAILED


def test_check_failure_keeps_a_done_record_done(h: Harness) -> None:
    h.apply(chain())
    h.cloud.world.fail("a", "check", permanent("AuthorizationFailed"))
    with pytest.raises(StepFailedError, match="give the identity a role"):
        h.apply(chain())
    assert h.state().steps["a"].status == StepStatus.DONE
    assert h.state().steps["a"].last_error.code == "AuthorizationFailed"


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    cloud = FakeCloud(behaviour={k: {"sleep_s": 0.15} for k in "pqrstu"})
    h = Harness(tmp_path, cloud)
    started = time.monotonic()
    h.apply([Thing(k) for k in "pqrstu"], max_workers=2)
    assert cloud.world.max_active == 2
    assert time.monotonic() - started >= 0.45  # 6 x 0.15 s on 2 workers

    cloud2 = FakeCloud(behaviour={k: {"sleep_s": 0.2} for k in "pqrstu"})
    h2 = Harness(tmp_path / "wide", cloud2)
    h2.apply([Thing(k) for k in "pqrstu"], max_workers=6)
    assert cloud2.world.max_active == 6


def test_dependants_wait_for_their_dependencies(h: Harness) -> None:
    h.cloud.behaviour = {"a": {"sleep_s": 0.1}, "d": {"sleep_s": 0.1}}
    h.apply(chain(), max_workers=4)
    log = h.cloud.world.log
    assert log.index("put a") < log.index("put b") < log.index("put c")


def test_apply_needs_run_only_when_the_consumer_must_apply(h: Harness) -> None:
    build = Thing("build")
    image = Thing("image", needs=[build])
    pool = Thing("pool", deps=[image])
    h.apply([build, image, pool])
    assert h.cloud.world.writes == {"build": 1, "image": 1, "pool": 1}

    h.cloud.world.delete("build")  # cleanup removed the build resources
    result = h.apply([Thing("build"), Thing("image", needs=[build]), pool])
    actions = {c.key: (c.action, c.reason) for c in result.changes}
    assert actions["build"] == ("skip", "not needed: image up to date")
    assert actions["image"][0] == actions["pool"][0] == "no-op"
    assert h.cloud.world.get("build") is None

    # a new image input re-creates the build resources first
    build2 = Thing("build")
    h.apply([build2, Thing("image", "v2", needs=[build2]), Thing("pool", deps=[image])])
    assert h.cloud.world.get("build") is not None
    assert h.cloud.world.log[-3:] == ["put build", "put image", "put pool"]


def test_plan_shows_conditional_steps_needed_by_a_change(h: Harness) -> None:
    build = Thing("build")
    h.apply([build, Thing("image", needs=[build])])
    h.cloud.world.delete("build")
    plan = h.plan([build, Thing("image", "v2", needs=[build])])
    assert plan["image"].action == "update"
    assert plan["build"].action == "create"


def test_target_runs_one_step_and_its_dependencies(h: Harness) -> None:
    result = h.apply(chain(), target="b")
    assert [c.key for c in result.changes] == ["a", "b"]
    assert h.cloud.world.get("c") is None and h.cloud.world.get("d") is None
    with pytest.raises(UsageError, match="no step 'zz'"):
        h.apply(chain(), target="zz")


def test_lost_state_is_rebuilt_by_adoption_without_writes(h: Harness) -> None:
    h.apply(chain())
    first_run = h.state().runs[0].run_id
    h.state_path.unlink()
    result = h.apply(chain())
    assert {c.action for c in result.changes} == {"no-op"}
    assert h.cloud.world.total_writes() == 4
    assert h.state().steps["a"].created[0].created_by_run == first_run


def test_crash_after_put_before_save_is_adopted(h: Harness) -> None:
    """The world has b (PUT sent) but the state says in flight: no second write."""
    h.apply(chain())
    state = h.state()
    state.steps["b"].status = StepStatus.IN_FLIGHT
    h.engine([], lock=True).journal.store.write(state)  # type: ignore[union-attr]
    h.last.journal.close()
    result = h.apply(chain())
    assert {c.key: c.action for c in result.changes}["b"] == "no-op"
    assert h.cloud.world.writes["b"] == 1
    assert h.state().steps["b"].status == StepStatus.DONE


def test_removed_step_is_planned_as_delete_and_deleted_on_apply(h: Harness) -> None:
    h.apply(chain())
    a = Thing("a")
    b = Thing("b", deps=[a])
    plan = h.plan([a, b])
    assert plan["c"].action == "delete" and plan["d"].action == "delete"
    result = h.apply([a, b])
    assert sorted(c.key for c in result.changes if c.action == "delete") == ["c", "d"]
    assert h.cloud.world.get("c") is None and h.cloud.world.get("d") is None
    assert h.state().steps["c"].status == StepStatus.DESTROYED


def test_destroy_deletes_what_this_pipeline_created_newest_first(h: Harness) -> None:
    h.apply(chain())
    h.cloud.world.log.clear()
    result = h.destroy(chain())
    deleted = [line for line in h.cloud.world.log if line.startswith("delete")]
    assert sorted(deleted) == ["delete a", "delete b", "delete c", "delete d"]
    assert deleted.index("delete c") < deleted.index("delete b") < deleted.index("delete a")
    assert all(c.action == "delete" for c in result.changes)
    state = h.state()
    assert {r.status for r in state.steps.values()} == {StepStatus.DESTROYED}
    assert state.created_resources() == []
    assert state.runs[-1].command == "destroy"
    # destroying again is a no-op
    h.cloud.world.log.clear()
    assert h.destroy(chain()).changes == []
    assert h.cloud.world.log == []


@pytest.mark.parametrize("tagged", [True, False])
def test_destroy_leaves_pre_existing_resources_alone(h: Harness, tagged: bool) -> None:
    h.cloud.world.put("shared", "theirs", {})  # made by someone else before the pipeline
    shared = Thing("shared", tagged=tagged)
    steps = [shared, Thing("mine", deps=[shared], tagged=tagged)]
    h.apply(steps)
    state = h.state()
    assert state.steps["shared"].created == []
    assert [r.id for r in state.steps["mine"].created] == ["/things/mine"]
    h.cloud.world.log.clear()
    h.destroy(steps)
    assert h.cloud.world.log == ["delete mine"]
    assert h.cloud.world.get("shared") is not None


class Swept(Thing):
    """A thing whose step also finds, by tags alone, every thing of the pipeline (as the
    build VM's step finds the whole build)."""

    kind = "test_swept"

    def leftovers(self, ctx: RunContext) -> list[ResourceRef]:
        world = cloud_of(ctx).world
        world.maybe_fail(self.key, "leftovers")
        found = []
        for name in sorted(world.things):
            tags = (world.get(name) or {}).get("tags", {})
            run = Marks.Tag.creator(tags, ctx.pipeline)
            found.append(ResourceRef(id=f"/things/{name}", kind=KIND, created_by_run=run))
        return found

    @classmethod
    def destroy(cls, ctx: RunContext, outputs: ThingOutputs) -> None:
        """From `resources` alone: a record destroy adopted has no other outputs."""
        for ref in outputs.created():
            cloud_of(ctx).world.delete(ref.id.rsplit("/", 1)[-1])


def test_destroy_finds_by_tags_what_a_lost_state_forgot(h: Harness) -> None:
    world = h.cloud.world
    h.apply([Swept("a"), Thing("b")])
    world.put("theirs", "x", {})  # someone else's: never deleted
    world.put("older", "x", {Marks.Tag.PIPELINE: "demo", Marks.Tag.RUN: "20260101T000000Z-abcdef"})
    h.state_path.unlink()
    world.fail("a", "leftovers", transient())  # the search is retried like any call
    world.log.clear()
    h.destroy([Swept("a"), Thing("b")])
    assert sorted(world.log) == ["delete a", "delete b", "delete older"]
    assert world.get("theirs") is not None
    record = h.state().steps["a"]
    assert record.status == StepStatus.DESTROYED and record.created == []
    # with the state intact, what the state lists is not listed twice
    h.apply([Swept("a"), Thing("b")])
    engine = h.engine([Swept("a"), Thing("b")])
    try:
        assert engine.adopt_leftovers() == 0
        assert [key for key, _ in engine.destroy_plan()] == ["b", "a"]
    finally:
        engine.journal.close()


def test_output_of_undeclared_dependency_is_refused(h: Harness) -> None:
    class Sneaky(Thing):
        kind = "test_sneaky"

        def apply(self, ctx: RunContext):  # type: ignore[no-untyped-def]
            ctx.output(other)
            return super().apply(ctx)

    other = Thing("other")
    with pytest.raises(StepFailedError, match="does not depend on it"):
        h.apply([other, Sneaky("sneaky")])


def test_interrupt_lets_in_flight_settle_and_saves(tmp_path: Path) -> None:
    flag = StopFlag()
    cloud = FakeCloud(behaviour={"b": {"sleep_s": 0.3}})
    h = Harness(tmp_path, cloud)
    threading.Timer(0.1, flag.request).start()
    with pytest.raises(Interrupted, match="Run apply again to resume"):
        h.apply(chain(), stop_flag=flag, max_workers=1)
    state = h.state()
    assert state.steps["b"].status == StepStatus.DONE  # the in-flight call settled
    assert "c" not in state.steps  # no new work started
    assert state.runs[-1].result == "interrupted"

    result = Harness(tmp_path, cloud).apply(chain())
    assert {c.key: c.action for c in result.changes} == {
        "a": "no-op",
        "b": "no-op",
        "c": "created",
        "d": "created",
    }


def test_interrupt_during_a_wait_leaves_the_step_in_flight(tmp_path: Path) -> None:
    flag = StopFlag()
    cloud = FakeCloud(behaviour={"a": {"wait_forever": True}})
    h = Harness(tmp_path, cloud, clock=Clock())
    threading.Timer(0.2, flag.request).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        h.apply(chain(), stop_flag=flag)
    assert time.monotonic() - started < 60  # the wait would never end by itself
    assert h.state().steps["a"].status == StepStatus.IN_FLIGHT
    waits = [e for e in h.sink.events if e.kind == "step_waiting"]
    assert [(e.message, e.data["what"]) for e in waits] == [
        ("waiting for thing a to appear", "thing a to appear")  # one note, not one per probe
    ]

    cloud.behaviour.clear()
    result = Harness(tmp_path, cloud).apply(chain())
    assert {c.key: c.action for c in result.changes}["a"] == "created"


def test_world_file_round_trip(tmp_path: Path) -> None:
    world = World(tmp_path / "world.json")
    world.put("x", "1", {"t": "v"})
    assert World(tmp_path / "world.json").get("x") == {"value": "1", "tags": {"t": "v"}}


def test_read_only_step_is_read_not_changed_and_never_applied(h: Harness) -> None:
    probe = Probe("preflight")
    steps = [probe, Thing("a", deps=[probe])]
    plan = h.plan(steps)
    assert plan["preflight"].action == "read" and plan["a"].action == "create"
    h.apply(steps)
    assert h.state().steps["preflight"].status == StepStatus.DONE

    probe2 = Probe("preflight", setting="s2")  # e.g. a pool size the preflight checks
    plan = h.plan([probe2, Thing("a", deps=[probe2])])
    assert plan["preflight"].action == "read"
    assert plan["preflight"].reason == "input setting changed"
    # the probe's outputs are known at plan time, so `a` is observed, not "may change"
    assert plan["a"].action == "no-op"
    result = h.apply([probe2, Thing("a", deps=[probe2])])
    assert {c.key: c.action for c in result.changes} == {"preflight": "read", "a": "no-op"}
    assert h.cloud.world.total_writes() == 1


def test_offline_plan_uses_the_state_alone(h: Harness) -> None:
    h.apply(chain())
    h.cloud.world.things.clear()  # Azure changed behind our back; offline cannot see it
    offline = h.plan(chain(value_c="v2"), offline=True)
    assert {k: c.action for k, c in offline.items()} == {
        "a": "no-op",
        "b": "no-op",
        "c": "update",
        "d": "no-op",
    }
    assert offline["c"].reason == "input value changed"
    observed = h.plan(chain(value_c="v2"))
    assert observed["a"].action == "create"


def test_step_kinds_are_unique_and_outputs_may_not_hold_secrets() -> None:
    from pydantic import SecretStr

    from batchimage.steps.base import STEP_KINDS, Outputs

    assert STEP_KINDS["test_thing"] is Thing
    with pytest.raises(TypeError, match="already"):

        class Clash(Thing):
            kind = "test_thing"

    with pytest.raises(TypeError, match="must not hold secrets"):

        class Leaky(Outputs):
            password: SecretStr | None = None


def test_apply_right_after_its_plan_does_not_ask_again_what_the_plan_found(h: Harness) -> None:
    h.apply(chain())
    engine = h.engine(chain(value_c="v2"))
    try:
        planned = {c.key: c.action for c in engine.plan()}
        assert planned == {"a": "no-op", "b": "no-op", "c": "update", "d": "no-op"}
        # a check of a, b or d now would fail: the apply must take the plan's answers
        for name in "abd":
            h.cloud.world.fail(name, "check", permanent())
        result = engine.apply(reuse_plan=True)
    finally:
        engine.journal.close()
    assert {c.key: c.action for c in result.changes}["c"] == "updated"
    assert h.cloud.world.get("c")["value"] == "v2(v1(v1))"
    # without reuse the queued failures are still there: a fresh apply meets them
    with pytest.raises(StepFailedError):
        h.apply(chain(value_c="v2"))


def test_apply_checks_again_a_step_whose_dependency_changed_since_the_plan(h: Harness) -> None:
    h.apply(chain())
    engine = h.engine(chain(value_a="v2"))
    try:
        engine.plan()
        result = engine.apply(reuse_plan=True)
    finally:
        engine.journal.close()
    assert [(c.key, c.action) for c in result.changes][:3] == [
        ("a", "updated"),
        ("b", "updated"),
        ("c", "updated"),
    ]
    assert h.cloud.world.get("c")["value"] == "v1(v1(v2))"


class ReadsBack(Thing):
    """A step whose apply hands back the outputs its own last read gave (`apply_observes`)."""

    kind = "test_reads_back"
    apply_observes = True
    checks = 0

    def check(self, ctx: RunContext) -> ThingOutputs | None:
        type(self).checks += 1
        return super().check(ctx)

    def apply(self, ctx: RunContext) -> ThingOutputs | None:
        super().apply(ctx)
        found = super().check(ctx)  # the apply's own read of what it made
        return None if found is None else found.model_copy(update={"value": "read back"})


def test_outputs_an_apply_reads_back_are_taken_without_a_check(h: Harness) -> None:
    ReadsBack.checks = 0
    step = ReadsBack("a")
    h.apply([step])
    assert ReadsBack.checks == 1  # before the apply, none after it
    assert h.state().steps["a"].outputs["value"] == "read back"  # what the apply returned


class ChecksAfter(ReadsBack):
    """The same apply, without `apply_observes`."""

    kind = "test_checks_after"
    apply_observes = False


def test_without_apply_observes_the_engine_checks_after_the_apply(h: Harness) -> None:
    ChecksAfter.checks = 0
    h.apply([ChecksAfter("a")])
    assert ChecksAfter.checks == 2  # before and after the apply
    assert h.state().steps["a"].outputs["value"] == "v1"  # what the check found
