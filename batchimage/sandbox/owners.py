"""The processes a sandbox started for a caller lives for: its starter, and every command
that reuses it while it runs.

It stops once none of them runs any more. A process is added only while the sandbox is
not stopping, so a command that was added can count on the sandbox until it ends; one
refused waits for this sandbox to stop and starts a new one.
"""

from __future__ import annotations

import os
import threading


def alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's counts as existing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Owners:
    """The owning process ids of one sandbox, and whether it has begun to stop."""

    def __init__(self, first: int) -> None:
        self._pids = {first}
        self._lock = threading.Lock()
        self._left = threading.Event()
        self.stopping = False

    def add(self, pid: int) -> bool:
        """Count `pid` as an owner; False once the sandbox is stopping."""
        with self._lock:
            if self.stopping:
                return False
            self._pids.add(pid)
            return True

    def leave(self, pid: int) -> bool:
        """`pid` no longer needs the sandbox; True when that leaves it without owners."""
        with self._lock:
            self._pids.discard(pid)
        self._left.set()
        return not self.keep()

    def wait(self, timeout: float) -> None:
        """Return after `timeout` seconds, or as soon as an owner leaves."""
        if self._left.wait(timeout):
            self._left.clear()

    def keep(self) -> bool:
        """Whether some owner still runs; the first time none does, the sandbox is stopping."""
        with self._lock:
            if not self.stopping:
                self._pids = {pid for pid in self._pids if alive(pid)}
                self.stopping = not self._pids
            return not self.stopping

    def pids(self) -> list[int]:
        """The owners known now (some may have ended since the last `keep`)."""
        with self._lock:
            return sorted(self._pids)
