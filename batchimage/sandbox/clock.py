"""Simulated time: wall-clock based (so work "keeps running" while no process is up),
scaled, with an offset an admin can advance; plus persisted timers that fire actions.

A timer is a record `{"at": <sim time>, "action": <name>, "args": {...}}` in the store's
`timers` table; `settle()` runs every due timer's action (registered with `@action`) in
time order. Every request settles first, so reads always see the world as of now.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchimage.sandbox.context import World

ActionFn = Callable[["World", dict[str, Any]], None]
ACTIONS: dict[str, ActionFn] = {}


def action(name: str) -> Callable[[ActionFn], ActionFn]:
    """Register a timer action under `name` (a stable string: timers are persisted)."""

    def register(fn: ActionFn) -> ActionFn:
        if name in ACTIONS and ACTIONS[name] is not fn:
            raise ValueError(f"timer action {name} registered twice")
        ACTIONS[name] = fn
        return fn

    return register


class Clock:
    """Simulated time in seconds: the real epoch time plus an offset (admin-advanced).

    Durations are in simulated seconds and scaled into real seconds by `scale`.
    """

    def __init__(self, scale: float, offset: float = 0.0) -> None:
        self.scale = scale
        self.offset = offset
        self.firing: float | None = None  # the due time of the timer whose action runs

    def now(self) -> float:
        return time.time() + self.offset

    def due(self, duration: float) -> float:
        """The time a `duration`-second (simulated) operation started now is done; started
        by a timer's action, it started when that timer was due, not when a request
        happened to settle it (a systemd unit a run command leaves counts from the
        command's end, however late the next poll comes)."""
        start = self.now() if self.firing is None else self.firing
        return start + duration * self.scale

    def real(self, duration: float) -> float:
        """Real seconds for a simulated duration."""
        return duration * self.scale


def schedule(world: World, duration: float, name: str, args: dict[str, Any]) -> str:
    """Fire action `name(world, args)` after `duration` simulated seconds; returns the id."""
    if name not in ACTIONS:
        raise KeyError(f"unknown timer action {name}")
    timer_id = uuid.uuid4().hex
    meta = world.store.meta()
    meta["timer_seq"] = seq = int(meta.get("timer_seq", 0)) + 1  # ties fire in this order
    timer = {"at": world.clock.due(duration), "seq": seq, "action": name, "args": args}
    world.store.table("timers")[timer_id] = timer
    world.store.touch()
    return timer_id


def settle(world: World) -> int:
    """Run every due timer in time order (new due timers too); returns how many ran."""
    timers = world.store.table("timers")
    ran = 0
    while True:
        now = world.clock.now()
        due = [(t["at"], t.get("seq", 0), tid) for tid, t in timers.items() if t["at"] <= now]
        if not due:
            return ran
        *_, tid = min(due)
        timer = timers.pop(tid)
        world.store.touch()
        fn = ACTIONS.get(timer["action"])
        if fn is not None:
            world.clock.firing = timer["at"]
            try:
                fn(world, timer["args"])
            finally:
                world.clock.firing = None
        ran += 1
