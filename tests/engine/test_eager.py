"""Eager needs: an `apply_needs` step marked `eager` starts as soon as the step that needs
it is wanted (beside that step's dependencies), not once that step's check found it must
apply; it still runs only when that step is wanted at all."""

from __future__ import annotations

from pathlib import Path

from tests.engine.fakes import Harness, Thing
from tests.engine.test_absent import Early, real_clock_harness


class Staged(Thing):
    """A Thing whose apply needs nothing its needing step's dependencies make."""

    kind = "test_staged"
    eager = True


def pipeline() -> dict[str, Thing]:
    """vm -> custom (needs the staged file) -> image (needs custom; absent early)."""
    vm = Thing("vm")
    staged = Staged("staged")
    custom = Thing("custom", deps=[vm], needs=[staged])
    image = Early("image", needs=[custom])
    return {"vm": vm, "staged": staged, "custom": custom, "image": image}


def test_an_eager_need_runs_beside_the_dependencies(tmp_path: Path) -> None:
    h = real_clock_harness(tmp_path, {"vm": {"sleep_s": 0.4}, "staged": {"sleep_s": 0.4}})
    result = h.apply(list(pipeline().values()))
    log = h.cloud.world.log
    assert set(log[:2]) == {"put vm", "put staged"}
    assert h.cloud.world.max_active == 2  # side by side, not one after the other
    assert log[2:] == ["put custom", "put image"]
    assert result.outcomes["staged"] == "created"


def test_an_eager_need_of_a_step_not_wanted_does_not_run(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.apply(list(pipeline().values()))
    h.cloud.world.log.clear()
    h.cloud.world.delete("staged")  # gone (cleaned up): only wanted again with custom
    h.cloud.world.log.clear()
    result = h.apply(list(pipeline().values()))
    assert h.cloud.world.log == []
    assert "staged" not in result.outcomes or result.outcomes["staged"] == "skipped"
