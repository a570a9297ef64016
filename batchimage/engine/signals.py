"""Stopping a run: the `StopFlag` SIGINT/SIGTERM set (first signal: stop gracefully, second:
stop now), `handle_signals` routing them to it, and the error a stopped run ends with."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from batchimage.core.errors import BatchImageError, Interrupted
from batchimage.engine import wording
from batchimage.state import Journal


class StopFlag:
    """Set by SIGINT/SIGTERM: first signal = stop gracefully, second = stop now."""

    def __init__(self) -> None:
        self.requested = False
        self.forced = False
        self.signal_name = ""
        self.error: BatchImageError | None = None

    def abort(self, error: BatchImageError) -> None:
        """Stop now, with no grace, and end the run with `error` (the lock was lost; any
        thread may call it: it only sets attributes)."""
        self.error = error
        self.requested = True
        self.forced = True

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask the run to stop (called from a signal handler: only sets attributes)."""
        if self.requested:
            self.forced = True
        self.requested = True
        self.signal_name = signal.Signals(signum).name


@contextlib.contextmanager
def handle_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """Route SIGINT and SIGTERM to `flag` for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in sigs}
    for sig in sigs:
        signal.signal(sig, lambda signum, _frame: flag.request(signum))
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stopped(flag: StopFlag, journal: Journal) -> Interrupted:
    """The error a run stopped by `flag` ends with: it says where its progress is saved."""
    where = journal.store.where if journal.store else "the state"
    return Interrupted(wording.interrupted(flag.signal_name, where))


def check_stop(flag: StopFlag, journal: Journal) -> None:
    """Raise what `flag` asks for, if anything: the error given to `abort`, or
    `stopped` after a signal."""
    if flag.error is not None:
        raise flag.error
    if flag.requested:
        raise stopped(flag, journal)
