"""Timers that keep simulated time in a chain: a follow-up event is due a duration after
the event that schedules it was due (not after the request that happened to run it), so
a pool reaches the same state at the same simulated time however rarely clients poll.

`now(world)` is the time of the event being handled (or the clock outside timers);
`later()` schedules after it; `@action(name)` registers a timer action that sets it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchimage.sandbox import clock
from batchimage.sandbox.context import World

_EVENTS: list[float] = []  # the due time of the timer action running (store lock held)


def now(world: World) -> float:
    """The simulated time of the event being handled (a timer's due time, also one a plain
    `clock.action` handles)."""
    if _EVENTS:
        return _EVENTS[-1]
    return world.clock.now() if world.clock.firing is None else world.clock.firing


def later(world: World, duration: float, name: str, args: dict[str, Any]) -> None:
    """Fire action `name` `duration` simulated seconds after `now(world)`."""
    due = now(world) + world.clock.real(duration)
    clock.schedule_at(world, due, name, {**args, "_due": due})


def action(name: str) -> Callable[[clock.ActionFn], clock.ActionFn]:
    """Register a timer action that runs at its due time (see `now`)."""

    def register(fn: clock.ActionFn) -> clock.ActionFn:
        def run(world: World, args: dict[str, Any]) -> None:
            _EVENTS.append(float(args.get("_due", world.clock.now())))
            try:
                fn(world, args)
            finally:
                _EVENTS.pop()

        clock.action(name)(run)
        return fn

    return register
