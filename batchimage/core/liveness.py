"""Is a recorded process still running, and is it the process that was recorded?

A lock holder or a run record names a pid, a host and when it started. On this host the
pid is asked directly (signal 0); a pid that now belongs to a process that started after
the record (the pid was reused) counts as gone. On Linux the start time comes from
`/proc/<pid>/stat`; elsewhere a live pid is taken as the recorded one. On another host
nothing can be asked: the answer is "unknown".
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Literal

ProcessState = Literal["alive", "gone", "unknown"]

# /proc gives the boot time in whole seconds: a process may seem to start up to 1 s late.
START_SLACK_S = 1.5


def this_host() -> str:
    """The name records give this machine (socket.gethostname)."""
    return socket.gethostname()


def process_state(pid: int, host: str, since: datetime) -> ProcessState:
    """Whether the process `pid` on `host`, recorded as running at `since`, still runs."""
    if host != this_host():
        return "unknown"
    if pid <= 0:
        return "gone"
    if pid == os.getpid():
        return "alive"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return "unknown"
    started = start_time(pid)
    if started is not None and started > since.timestamp() + START_SLACK_S:
        return "gone"  # the pid was reused by a process that started after the record
    if _is_zombie(pid):
        return "gone"
    return "alive"


def start_time(pid: int) -> float | None:
    """When process `pid` started (Unix time), where the system says (Linux); else None."""
    try:
        stat = _read(f"/proc/{pid}/stat")
        lines = _read("/proc/stat").splitlines()
        boot = next(float(line.split()[1]) for line in lines if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    try:
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime, after "pid (comm)"
    except (IndexError, ValueError):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _is_zombie(pid: int) -> bool:
    try:
        return _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] in {"Z", "X"}
    except (OSError, IndexError):
        return False


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()
