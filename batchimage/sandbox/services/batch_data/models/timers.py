"""Timers that keep simulated time in a chain: a follow-up event is due a duration after
the event that schedules it was due (not after the request that happened to run it), so
a pool reaches the same state at the same simulated time however rarely clients poll.
The clock keeps the chain (`clock.Clock.due` counts from the due time of the timer whose
action runs); this module names it for the Batch models.

`now(world)` is the time of the event being handled (or the clock outside timers);
`later()` schedules after it; `@action(name)` registers a timer action.
"""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import clock
from batchimage.sandbox.context import World

action = clock.action  # a timer action: runs at its due time, which `now` then gives


def now(world: World) -> float:
    """The simulated time of the event being handled: the due time of the timer whose
    action runs, else the clock's."""
    return world.clock.now() if world.clock.firing is None else world.clock.firing


def later(world: World, duration: float, name: str, args: dict[str, Any]) -> None:
    """Fire action `name` `duration` simulated seconds after `now(world)`."""
    clock.schedule(world, duration, name, args)
