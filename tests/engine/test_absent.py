"""Early decisions: a step that can tell its result is absent lets what its apply needs
start while its dependencies are still being made, with every other guarantee unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchimage.core.errors import StepFailedError
from batchimage.core.waiting import Clock
from batchimage.state import StepStatus
from batchimage.steps.base import RunContext
from tests.engine.fakes import FakeCloud, Harness, Thing, cloud_of, permanent


class Early(Thing):
    """A Thing that answers `absent` from its name alone, and counts the questions."""

    kind = "test_early"

    def __init__(self, *args: Any, answer: str = "world", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answer = answer  # "world" (look), "unknown" (False) or "error" (raise)
        self.asked = 0
        self.checked = 0

    def absent(self, ctx: RunContext) -> bool:
        self.asked += 1
        if self.answer == "error":
            raise permanent("NotAllowedToLook")
        world = cloud_of(ctx).world
        return self.answer == "world" and world.get(self.key) is None

    def check(self, ctx: RunContext) -> Any:
        self.checked += 1
        return super().check(ctx)


def pipeline(image_value: str = "v1", answer: str = "world") -> dict[str, Thing]:
    """gallery -> image (needs build) -> pool: the capture shape."""
    gallery = Thing("gallery")
    build = Thing("build")
    image = Early("image", image_value, deps=[gallery], needs=[build], answer=answer)
    pool = Thing("pool", deps=[image])
    return {"gallery": gallery, "build": build, "image": image, "pool": pool}


def real_clock_harness(tmp: Path, behaviour: dict[str, dict[str, Any]]) -> Harness:
    return Harness(tmp, FakeCloud(behaviour=behaviour), clock=Clock())


def test_needs_start_while_the_dependencies_are_made(tmp_path: Path) -> None:
    h = real_clock_harness(tmp_path, {"gallery": {"sleep_s": 0.4}, "build": {"sleep_s": 0.4}})
    steps = pipeline()
    result = h.apply(list(steps.values()))
    log = h.cloud.world.log
    assert set(log[:2]) == {"put gallery", "put build"}
    assert h.cloud.world.max_active == 2  # side by side, not one after the other
    assert log[2:] == ["put image", "put pool"]
    image = steps["image"]
    assert isinstance(image, Early)
    assert image.asked == 1 and image.checked == 1  # the check after its apply only
    assert {c.key: c.action for c in result.changes}["image"] == "created"
    assert result.outcomes["build"] == "created"


def test_early_decision_records_the_same_fingerprint_and_reapply_writes_nothing(
    tmp_path: Path,
) -> None:
    early = Harness(tmp_path / "early")
    early.apply(list(pipeline().values()))
    plain = Harness(tmp_path / "plain")
    plain.apply(list(pipeline(answer="unknown").values()))
    fingerprints = {k: r.fingerprint for k, r in early.state().steps.items()}
    assert fingerprints == {k: r.fingerprint for k, r in plain.state().steps.items()}
    assert early.state().steps["image"].status == StepStatus.DONE

    steps = pipeline()
    writes = early.cloud.world.total_writes()
    again = early.apply(list(steps.values()))
    assert early.cloud.world.total_writes() == writes  # zero writes
    image = steps["image"]
    assert isinstance(image, Early) and image.asked == 0  # done from these inputs: not asked
    assert {c.key: c.action for c in again.changes}["image"] == "no-op"
    assert again.outcomes["build"] == "skipped"


def test_existing_result_is_never_rebuilt_even_when_asked(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.apply(list(pipeline().values()))
    h.cloud.world.delete("build")  # cleanup removed the build resources
    h.state_path.unlink()  # and the state is lost: the step must be asked again
    steps = pipeline()
    writes = h.cloud.world.total_writes()
    result = h.apply(list(steps.values()))
    image = steps["image"]
    assert isinstance(image, Early) and image.asked == 1
    assert h.cloud.world.total_writes() == writes  # adopted, nothing rebuilt
    assert h.cloud.world.get("build") is None
    assert result.outcomes["build"] == "skipped"


def test_changed_image_starts_the_build_at_once(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.apply(list(pipeline().values()))
    h.cloud.world.delete("build")
    h.cloud.world.delete("image")  # like a new image fingerprint: no version holds it
    steps = pipeline("v2")
    result = h.apply(list(steps.values()))
    image = steps["image"]
    assert isinstance(image, Early) and image.asked == 1  # its own input changed
    assert h.cloud.world.log[-3:] == ["put build", "put image", "put pool"]
    assert result.outcomes["gallery"] == "unchanged"


@pytest.mark.parametrize("answer", ["unknown", "error"])
def test_an_unknown_or_failed_answer_falls_back_to_the_check(tmp_path: Path, answer: str) -> None:
    h = Harness(tmp_path)
    steps = pipeline(answer=answer)
    result = h.apply(list(steps.values()))
    image = steps["image"]
    assert isinstance(image, Early) and image.asked == 1 and image.checked == 2
    assert h.cloud.world.log.index("put gallery") < h.cloud.world.log.index("put build")
    assert result.outcomes["image"] == "created"


def test_plan_never_asks_and_says_what_it_said_before(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    steps = pipeline()
    plan = h.plan(list(steps.values()))
    image = steps["image"]
    assert isinstance(image, Early) and image.asked == 0
    assert (plan["image"].action, plan["image"].reason) == (
        "create",
        "does not exist yet (after gallery)",
    )
    assert plan["build"].action == "create"


def test_a_failed_dependency_stops_the_run_before_the_early_step_applies(
    tmp_path: Path,
) -> None:
    h = real_clock_harness(tmp_path, {"build": {"sleep_s": 0.2}})
    h.cloud.world.fail("gallery", "apply", permanent("QuotaExceeded"))
    with pytest.raises(StepFailedError) as caught:
        h.apply(list(pipeline().values()))
    assert caught.value.step == "gallery"
    assert h.cloud.world.get("image") is None and h.cloud.world.get("pool") is None
    state = h.state()
    assert "image" not in state.steps or state.steps["image"].status != StepStatus.DONE

    h.cloud.world.faults.clear()
    h.apply(list(pipeline().values()))  # resumes: a build made before the stop is adopted
    assert h.cloud.world.writes["build"] == 1
    assert h.cloud.world.get("pool") is not None
