"""The request log and per-operation counters that tests and benchmarks read over the
admin endpoint (e.g. to assert that a no-op apply sent zero writes)."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 20000


@dataclass
class Entry:
    """One answered request."""

    seq: int
    time: float
    method: str
    path: str
    operation: str
    plane: str
    write: bool
    status: int
    fault: str | None
    request_id: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RequestLog:
    """A bounded log of requests plus counters by operation, reads and writes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: deque[Entry] = deque(maxlen=MAX_ENTRIES)
        self.seq = 0
        self.operations: Counter[str] = Counter()
        self.reads = 0
        self.writes = 0
        self.faults = 0

    def record(self, **fields: Any) -> None:
        with self.lock:
            self.seq += 1
            entry = Entry(seq=self.seq, **fields)
            self.entries.append(entry)
            if entry.plane in ("arm", "batch"):
                self.operations[entry.operation] += 1
                if entry.write:
                    self.writes += 1
                else:
                    self.reads += 1
            if entry.fault:
                self.faults += 1

    def since(self, seq: int) -> list[dict[str, Any]]:
        with self.lock:
            return [e.to_json() for e in self.entries if e.seq > seq]

    def counters(self) -> dict[str, Any]:
        with self.lock:
            return {
                "operations": dict(self.operations),
                "reads": self.reads,
                "writes": self.writes,
                "total": self.reads + self.writes,
                "faults": self.faults,
                "seq": self.seq,
            }

    def reset(self) -> None:
        with self.lock:
            self.entries.clear()
            self.operations.clear()
            self.reads = self.writes = self.faults = 0
