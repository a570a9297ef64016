"""What a run tells as it goes: the `Event`s the engine and the steps emit, the `EventSink`
they go to (the sinks that show them are in `batchimage.ui`), and how a duration reads in
their words.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from batchimage.core.redact import redact


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run."""

    kind: str
    step: str | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> str:
        """The event as one JSON line (secrets redacted)."""
        stamp = datetime.fromtimestamp(self.ts, UTC).isoformat(timespec="milliseconds")
        doc: dict[str, Any] = {"ts": stamp, "event": self.kind}
        if self.step is not None:
            doc["step"] = self.step
        if self.message:
            doc["message"] = self.message
        doc.update(self.data)
        # Masked as text first (a secret at the start of a line is still at a line start),
        # then as JSON, for anything nested.
        doc = {k: redact(v) if isinstance(v, str) else v for k, v in doc.items()}
        return redact(json.dumps(doc, default=str))


class EventSink(Protocol):
    """Where a run's events go."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


def format_duration(seconds: float) -> str:
    """ "0.4 s", "8.2 s", "42 s", "3 min 5 s", "1 h 2 min"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole // 60, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
