"""The sandbox's simulated clock and timers (`batchimage.sandbox.clock`): an operation a
timer's action starts counts from when that timer was due, not from when a request
happened to settle it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchimage.sandbox import clock
from batchimage.sandbox.clock import Clock
from batchimage.sandbox.config import SandboxConfig
from batchimage.sandbox.context import Identity, World
from batchimage.sandbox.store import Store

SUB = "00000000-0000-4000-8000-000000000001"
fired: list[tuple[str, float]] = []


@clock.action("test.first")
def _first(world: World, args: dict[str, Any]) -> None:
    fired.append(("first", world.clock.now()))
    clock.schedule(world, 60.0, "test.second", {})  # e.g. a unit a run command leaves


@clock.action("test.second")
def _second(world: World, args: dict[str, Any]) -> None:
    fired.append(("second", world.clock.now()))


def test_a_timer_started_by_a_timer_counts_from_the_first_ones_due_time(tmp_path: Path) -> None:
    identity = Identity("t", SUB, "c", "s", "k")
    world = World(Store(tmp_path / "state.json"), Clock(1.0), SandboxConfig(), identity)
    fired.clear()
    clock.schedule(world, 10.0, "test.first", {})
    first_at = next(iter(world.store.table("timers").values()))["at"]
    world.clock.offset += 30.0  # the next request comes 20 s after the first was due
    assert clock.settle(world) == 1
    second = next(iter(world.store.table("timers").values()))
    assert second["at"] == first_at + 60.0  # from the first's due time, not from now
    assert world.clock.firing is None  # outside an action, `due` counts from now again
    world.clock.offset += 50.0  # 70 s after the first was due: the second is due too
    assert clock.settle(world) == 1
    assert [name for name, _ in fired] == ["first", "second"]
