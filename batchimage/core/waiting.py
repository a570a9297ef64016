"""What waiting needs: a poller's shape, a clock tests can replace, and the interruption a
stopping run raises inside a wait or sleep."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol


class StepInterrupted(Exception):
    """Raised inside a step when the run is stopping (Ctrl-C): the step is left in flight."""


class Poller(Protocol):
    """What `Waiter.wait` (core/waiter.py) needs from an azure.core LROPoller."""

    def done(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> None: ...
    def result(self, timeout: float | None = None) -> Any: ...


class Clock:
    """Monotonic time and an interruptible sleep; tests substitute a fake one."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        """Sleep `seconds`, or raise StepInterrupted as soon as `stop` is set."""
        if stop.wait(max(0.0, seconds)):
            raise StepInterrupted("stopped while sleeping")
