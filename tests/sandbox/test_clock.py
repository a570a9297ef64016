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
from batchimage.sandbox.services.batch_data.models import timers
from batchimage.sandbox.store import Store

SUB = "00000000-0000-4000-8000-000000000001"


class Frozen(Clock):
    """A clock that moves only when the test moves it (`offset`)."""

    def now(self) -> float:
        return 1_000_000.0 + self.offset


fired: list[tuple[str, float]] = []


@clock.action("test.first")
def _first(world: World, args: dict[str, Any]) -> None:
    fired.append(("first", world.clock.now()))
    clock.schedule(world, 60.0, "test.second", {})  # e.g. a unit a run command leaves


@timers.action("test.node_started")
def _node_started(world: World, args: dict[str, Any]) -> None:
    fired.append(("node_started", timers.now(world)))
    timers.later(world, 30.0, "test.node_idle", {})  # e.g. the start task's run


@timers.action("test.node_idle")
def _node_idle(world: World, args: dict[str, Any]) -> None:
    fired.append(("node_idle", timers.now(world)))


@clock.action("test.tick")
def _tick(world: World, args: dict[str, Any]) -> None:
    fired.append((f"tick {args['n']}", timers.now(world)))


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


def test_a_chained_event_fires_when_it_is_due_however_late_the_one_before_ran(
    tmp_path: Path,
) -> None:
    """A Batch node's next state is due a duration after the state before it was due: its
    timer fires then, neither later (the late request's time) nor earlier (by that
    lateness), so nothing is seen idle before the time its state says it turned idle."""
    identity = Identity("t", SUB, "c", "s", "k")
    world = World(Store(tmp_path / "state.json"), Frozen(1.0), SandboxConfig(), identity)
    fired.clear()
    timers.later(world, 10.0, "test.node_started", {})
    started = next(iter(world.store.table("timers").values()))["at"]
    world.clock.offset += 30.0  # settled 20 s after it was due
    assert clock.settle(world) == 1
    idle = next(iter(world.store.table("timers").values()))
    assert idle["at"] == started + 30.0
    world.clock.offset += 9.0  # 1 s before the idle is due (at started + 30)
    assert clock.settle(world) == 0
    world.clock.offset += 2.0
    assert clock.settle(world) == 1
    assert fired == [("node_started", started), ("node_idle", started + 30.0)]


def test_timers_due_at_the_same_time_fire_in_the_order_they_were_set(tmp_path: Path) -> None:
    """Sibling events (the nodes of one resize) fire in a fixed order, not by their ids;
    `timers.now` in a plain clock action is that timer's due time."""
    identity = Identity("t", SUB, "c", "s", "k")
    world = World(Store(tmp_path / "state.json"), Frozen(1.0), SandboxConfig(), identity)
    fired.clear()
    at = world.clock.now() + 5.0
    for n in range(12):
        clock.schedule(world, 5.0, "test.tick", {"n": n})
    world.clock.offset += 9.0  # settled 4 s late
    assert clock.settle(world) == 12
    assert fired == [(f"tick {n}", at) for n in range(12)]
