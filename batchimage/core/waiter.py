"""Waiting and progress: say what is happening, sleep, wait on a poller or poll a probe, each
stopping at once when the run stops, with a "still waiting" note now and then."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from batchimage.core.events import Event, EventSink
from batchimage.core.waiting import Clock, Poller, StepInterrupted

T = TypeVar("T")

WAIT_NOTE_S = 30.0  # the first "still waiting" note of a wait
WAIT_REPEAT_S = 60.0  # then one note per this many seconds


@dataclass(kw_only=True)
class Waiter:
    """Progress words and waits that go to `events`, end when `stop` is set, timed by `clock`.

    Its events name `step_key`: none here; a step's view of the run (`RunContext`) names
    its step."""

    events: EventSink
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Clock = field(default_factory=Clock)

    @property
    def step_key(self) -> str | None:
        """The step this waiter's events are about (None: the run)."""
        return None

    def say(self, message: str, **data: Any) -> None:
        """Report what the step is doing now (shown live; one event in JSON logs)."""
        self.events.emit(Event("step_progress", step=self.step_key, message=message, data=data))

    def sleep(self, seconds: float) -> None:
        """Sleep, but stop at once (StepInterrupted) when the run is interrupted."""
        self.clock.sleep(seconds, self.stop)

    def wait(self, poller: Poller, what: str, *, timeout_s: float | None = None) -> Any:
        """Wait for a long-running operation, saying what for; returns its result."""
        self.poll(
            lambda: True if poller.done() else None, what, timeout_s=timeout_s, waiter=poller.wait
        )
        return poller.result()

    def poll(
        self,
        probe: Callable[[], T | None],
        what: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float | None = None,
        waiter: Callable[[float], None] | None = None,
        phase_from: float | None = None,
    ) -> T:
        """Call `probe` until it returns non-None, reporting progress; honours Ctrl-C.
        `phase_from` (a `clock.monotonic()` time): after the first probe, probe at a fixed
        rate from it (`phase_from + k * interval_s`), not `interval_s` after each probe, so
        a change due a whole number of intervals after that time is seen at once.

        Says nothing when the first probe succeeds; otherwise one `step_waiting` event
        "waiting for <what>" now, then "still waiting for <what>" after `WAIT_NOTE_S`
        and every `WAIT_REPEAT_S` (with `elapsed_s`), so logs show liveness, not noise.
        """
        start = self.clock.monotonic()
        next_note, noted = 0.0, False
        while True:
            value = probe()
            if value is not None:
                return value
            elapsed = self.clock.monotonic() - start
            if self.stop.is_set():
                raise StepInterrupted(f"stopped while waiting for {what}")
            if timeout_s is not None and elapsed > timeout_s:
                raise TimeoutError(f"gave up waiting for {what} after {elapsed:.0f} s")
            if elapsed >= next_note:
                still = "still " if noted else ""
                self.events.emit(
                    Event(
                        "step_waiting",
                        step=self.step_key,
                        message=f"{still}waiting for {what}",
                        data={"what": what, "elapsed_s": round(elapsed, 1)},
                    )
                )
                next_note = elapsed + (WAIT_REPEAT_S if noted else WAIT_NOTE_S)
                noted = True
            pause = interval_s
            if phase_from is not None and interval_s > 0:
                pause -= (self.clock.monotonic() - phase_from) % interval_s
            if waiter is not None:
                waiter(min(pause, 0.5))
            else:
                self.sleep(pause)
