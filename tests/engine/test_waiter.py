"""The waiter alone (core/waiter.py): what it says and when, how a wait ends, stopping."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from batchimage.core.waiter import WAIT_NOTE_S, WAIT_REPEAT_S, Waiter
from batchimage.core.waiting import Clock, StepInterrupted
from batchimage.ui import CollectSink
from tests.engine.fakes import FakeClock


class Poller:
    """An operation done after `polls` waits; counts them."""

    def __init__(self, polls: int) -> None:
        self.left = polls
        self.waits: list[float | None] = []

    def done(self) -> bool:
        return self.left <= 0

    def wait(self, timeout: float | None = None) -> None:
        self.waits.append(timeout)
        self.left -= 1

    def result(self, timeout: float | None = None) -> Any:
        return "made"


def waiter(clock: Clock | None = None) -> tuple[Waiter, CollectSink]:
    sink = CollectSink()
    return Waiter(events=sink, clock=clock or FakeClock()), sink


def test_what_it_says_is_about_the_run() -> None:
    w, sink = waiter()
    w.say("reading things", count=2)
    [event] = sink.events
    assert (event.kind, event.step, event.message) == ("step_progress", None, "reading things")
    assert event.data == {"count": 2}


def test_a_wait_on_a_poller_waits_on_the_poller_and_returns_its_result() -> None:
    w, sink = waiter()
    poller = Poller(polls=3)
    assert w.wait(poller, "the thing") == "made"
    assert poller.waits == [0.5, 0.5, 0.5]  # the poller's own wait, never the clock's sleep
    assert [e.message for e in sink.events] == ["waiting for the thing"]


def test_the_notes_come_after_the_first_delay_then_at_the_repeat() -> None:
    clock = FakeClock()
    w, sink = waiter(clock)
    end = clock.now + WAIT_NOTE_S + 2 * WAIT_REPEAT_S + 1
    w.poll(lambda: True if clock.now >= end else None, "x", interval_s=1)
    elapsed = [e.data["elapsed_s"] for e in sink.events]
    assert elapsed == [
        0.0,
        WAIT_NOTE_S,
        WAIT_NOTE_S + WAIT_REPEAT_S,
        WAIT_NOTE_S + 2 * WAIT_REPEAT_S,
    ]
    assert clock.sleeps == [1] * len(clock.sleeps)


def test_a_poll_past_its_timeout_gives_up() -> None:
    clock = FakeClock()
    w, _ = waiter(clock)
    with pytest.raises(TimeoutError, match="gave up waiting for x after 11 s"):
        w.poll(lambda: None, "x", interval_s=1, timeout_s=10)


def test_a_stopped_run_ends_a_sleep_and_a_poll_at_once() -> None:
    w, sink = waiter(Clock())  # the real clock: a set stop flag returns at once
    w.stop.set()
    with pytest.raises(StepInterrupted):
        w.sleep(3600)
    with pytest.raises(StepInterrupted, match="stopped while waiting for x"):
        w.poll(lambda: None, "x", interval_s=3600)
    assert sink.events == []


def test_copies_share_the_stop_flag() -> None:
    from dataclasses import replace

    w, _ = waiter()
    copy = replace(w)
    assert copy.stop is w.stop
    assert isinstance(copy.stop, threading.Event)


def test_a_poll_with_a_phase_probes_at_a_fixed_rate_from_it() -> None:
    clock = FakeClock()
    w, _ = waiter(clock)
    start = clock.now - 0.25  # the phase began before the first probe
    probes: list[float] = []

    def probe() -> bool | None:
        probes.append(clock.now)
        clock.now += 0.1  # each probe takes time: the rate does not drift by it
        return True if len(probes) == 4 else None

    w.poll(probe, "x", interval_s=1.0, phase_from=start)
    assert [round(t - start, 6) for t in probes] == [0.25, 1.0, 2.0, 3.0]
