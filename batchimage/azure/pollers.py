"""The SDK's polling threads of long-running operations: polled at a fixed rate, and ended
when nobody waits for the operation any more. azure-core's pollers offer neither, so both
set attributes of the poller's own polling method (LROBasePolling / ARMPolling)."""

from __future__ import annotations

import time
from typing import Any


class Abandoned(Exception):
    """What the thread of an abandoned poller ends with (never raised to the tool)."""


def abandon(poller: Any) -> None:
    """Make `poller`'s thread stop at its next pause, without another request (nothing when
    the operation has ended). azure-core's LROPoller has no cancel: its thread polls until
    Azure ends the operation (a run command: up to 90 minutes), which in a process that goes
    on (tests, a rehearsal) is a thread left polling. The operation itself goes on in Azure."""
    method = _method(poller)
    if poller.done() or not hasattr(method, "_delay"):  # LROBasePolling pauses in `_delay`
        return

    def stop() -> None:
        raise Abandoned("batchimage stopped waiting for this operation")

    method._delay = stop


def fixed_rate(poller: Any) -> Any:
    """Make `poller` poll at a fixed rate: the service's interval (Retry-After, else the
    client's) counted from one poll's start to the next, not from each answer, so a long
    operation is not seen later and later by a request's time per poll. Returns `poller`.
    (It takes effect from the poll after the one under way: the thread is already running.)"""
    method = _method(poller)
    needed = ("_delay", "_extract_delay", "_sleep", "update_status")
    if poller.done() or not all(hasattr(method, name) for name in needed):
        return poller
    started = [time.monotonic()]
    update = method.update_status

    def timed_update() -> None:
        started[0] = time.monotonic()
        update()

    def delay() -> None:
        left = method._extract_delay() - (time.monotonic() - started[0])
        if left > 0:
            method._sleep(left)

    method.update_status = timed_update
    method._delay = delay
    return poller


def _method(poller: Any) -> Any:
    """The poller's polling method (None for a poller that is not azure-core's)."""
    get = getattr(poller, "polling_method", None)
    return get() if callable(get) else None
