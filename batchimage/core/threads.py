"""Background threads that never take SIGINT or SIGTERM, so the main thread always does.

A process-wide signal may be delivered to any thread that does not block it; Python runs
its handler only in the main thread, and only once that thread runs again. Taken by a
background thread, a Ctrl-C would leave the main thread asleep in a read (at a prompt)
with nothing to wake it. Every thread batchimage starts blocks both signals.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def start(target: Callable[..., Any], *, name: str, args: tuple[Any, ...] = ()) -> threading.Thread:
    """Start a daemon thread running `target(*args)` with SIGINT and SIGTERM blocked."""
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # the thread inherits it
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread


def block_signals() -> None:
    """Block SIGINT and SIGTERM in the calling thread (an executor's `initializer`)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
