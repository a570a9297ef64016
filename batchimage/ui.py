"""Progress display: events from the engine, shown three ways.

- `LiveSink`: on a terminal, a rich live table of steps (spinner, elapsed time, what
  each step is doing now, e.g. "waiting for VM bi-demo-vm (40 s so far)").
- `PlainSink`: when not a terminal, one timestamped line per event.
- `JsonSink`: `--log-format json`, one JSON object per line (event, step, message,
  durations, attempt, ...) for CI.

Every sink redacts secrets; sinks are thread-safe (steps run concurrently).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from batchimage.redact import redact


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
        return redact(json.dumps(doc, default=str))


class EventSink(Protocol):
    """Where a run's events go."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Discards events."""

    def emit(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass


class CollectSink:
    """Keeps events in a list (for tests and for summaries)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def close(self) -> None:
        pass

    def kinds(self, step: str | None = None) -> list[str]:
        """The event kinds seen (for one step if given), in order."""
        return [e.kind for e in self.events if step is None or e.step == step]


class JsonSink:
    """One JSON object per line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        line = event.to_json()
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


def describe(event: Event) -> str | None:
    """The human sentence for an event, or None for events not worth a line."""
    d = event.data
    kind = event.kind
    if kind == "run_started":
        return f"{d.get('command', 'run')} {d.get('pipeline', '')} (run {d.get('run_id', '')})"
    if kind == "step_planned":
        return f"{d.get('action')}: {d.get('reason')}"
    if kind == "step_applying":
        return f"{d.get('action', 'apply')}: {event.message}"
    if kind == "step_progress":
        return event.message
    if kind == "step_waiting":
        return f"waiting for {event.message} ({d.get('elapsed_s', 0):.0f} s so far)"
    if kind == "step_retrying":
        return (
            f"attempt {d.get('attempt')} failed ({event.message}); retrying in "
            f"{d.get('delay_s', 0):.1f} s"
        )
    if kind == "step_done":
        return f"{d.get('action', 'done')} in {d.get('duration_s', 0):.1f} s"
    if kind == "step_skipped":
        return f"skipped: {event.message}"
    if kind == "step_failed":
        return f"FAILED after {d.get('duration_s', 0):.1f} s: {event.message}"
    if kind == "step_interrupted":
        return f"interrupted: {event.message}"
    if kind in {"run_note", "run_stopping", "run_finished", "step_destroying", "step_destroyed"}:
        return event.message
    return None


class PlainSink:
    """One timestamped line per event, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        text = describe(event)
        if text is None:
            return
        stamp = datetime.fromtimestamp(event.ts).strftime("%H:%M:%S")
        who = f"{event.step}: " if event.step else ""
        with self._lock:
            self.stream.write(redact(f"{stamp} {who}{text}") + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


@dataclass
class _Row:
    status: str = "waiting"
    started: float | None = None
    finished: float | None = None
    activity: str = ""


class LiveSink:
    """A rich live table of steps: status with spinner, elapsed time, current activity."""

    RUNNING = {"checking", "applying", "destroying"}

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.rows: dict[str, _Row] = {}
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self.live = Live(self, console=self.console, refresh_per_second=8, transient=False)
        self.live.start()

    def emit(self, event: Event) -> None:
        with self._lock:
            self._apply(event)

    def _apply(self, event: Event) -> None:
        if event.kind == "run_started":
            for key in event.data.get("steps", []):
                self.rows.setdefault(key, _Row())
            return
        if event.step is None:
            text = describe(event)
            if text:
                self.notes.append(redact(text))
            return
        row = self.rows.setdefault(event.step, _Row())
        text = describe(event) or ""
        if event.kind == "step_checking":
            row.status, row.started = "checking", event.ts
        elif event.kind == "step_applying":
            row.status = "applying"
        elif event.kind == "step_destroying":
            row.status, row.started = "destroying", event.ts
        elif event.kind in {"step_done", "step_destroyed"}:
            row.status, row.finished = str(event.data.get("action", "done")), event.ts
        elif event.kind == "step_planned":
            row.status = str(event.data.get("action"))
        elif event.kind == "step_skipped":
            row.status, row.finished = "skipped", event.ts
        elif event.kind in {"step_failed", "step_interrupted"}:
            row.status, row.finished = event.kind.removeprefix("step_"), event.ts
        row.activity = redact(text)

    def __rich__(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for column in ("", "step", "status", "time", "activity"):
            table.add_column(column)
        now = time.time()
        with self._lock:
            for key, row in self.rows.items():
                mark: Any = (
                    Spinner("dots") if row.status in self.RUNNING else _MARKS.get(row.status, " ")
                )
                end = row.finished or now
                elapsed = f"{end - row.started:.0f}s" if row.started else ""
                table.add_row(mark, key, row.status, elapsed, row.activity[:100])
            for note in self.notes[-3:]:
                table.add_row("", "", "", "", note)
        return table

    def close(self) -> None:
        self.live.stop()


_MARKS = {
    "no-op": "[green]✓[/]",
    "created": "[green]✓[/]",
    "updated": "[green]✓[/]",
    "replaced": "[green]✓[/]",
    "read": "[green]✓[/]",
    "destroyed": "[green]✓[/]",
    "skipped": "[dim]-[/]",
    "failed": "[red]✗[/]",
    "interrupted": "[yellow]![/]",
}


def make_sink(log_format: str, stream: TextIO | None = None) -> EventSink:
    """The sink for `--log-format` on `stream` (stderr): json, live table on a TTY, or lines."""
    out = stream or sys.stderr
    if log_format == "json":
        return JsonSink(out)
    if out.isatty():
        return LiveSink(out)
    return PlainSink(out)
