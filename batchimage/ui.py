"""Progress display: events from the engine, shown three ways.

- `LiveSink`: on a terminal, a rich live table of steps (spinner, elapsed time, what
  each step is doing now, e.g. "waiting for build VM bi-demo-vm").
- `PlainSink`: when not a terminal, one timestamped line per event, each saying once what
  happens in plain words ("creating gallery g", "still waiting for VM v (2 min so far)",
  "created gallery g in 3.1 s"); times only where they tell something (1 s or more).
- `JsonSink`: `--log-format json`, one JSON object per line (event, step, message,
  durations, attempt, ...) for CI.

The text sinks leave out a successful `run_finished`: the command prints the summary on
stdout. Every sink redacts secrets; sinks are thread-safe (steps run concurrently).
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


MEANINGFUL_S = 1.0  # shorter durations are not shown in text


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


def _took(data: dict[str, Any], word: str = "in") -> str:
    """ " in 8.2 s" when the duration in `data` is worth saying, else ""."""
    seconds = float(data.get("duration_s") or 0)
    return f" {word} {format_duration(seconds)}" if seconds >= MEANINGFUL_S else ""


def _why(action: str, reason: str) -> str:
    """ " (reason)", unless the verb says it already (creating what does not exist yet)."""
    if not reason or (action == "create" and reason.startswith("does not exist yet")):
        return ""
    return f" ({reason})"


def describe(event: Event) -> str | None:
    """The human sentence for an event, or None for events not worth a line."""
    d = event.data
    kind = event.kind
    if kind == "run_started":
        steps = d.get("steps")
        return event.message or (
            f"{d.get('command', 'run')} {d.get('pipeline', '')}: {len(steps or [])} steps "
            f"(run {d.get('run_id', '')})"
        )
    if kind == "step_planned":
        return f"{d.get('action')}: {d.get('reason')}"
    if kind == "step_applying":
        action = str(d.get("action", "apply"))
        return f"{d.get('doing') or action}{_why(action, event.message)}"
    if kind == "step_waiting":
        seconds = float(d.get("elapsed_s") or 0)
        so_far = f" ({format_duration(seconds)} so far)" if seconds >= MEANINGFUL_S else ""
        return f"{event.message}{so_far}"
    if kind == "step_retrying":
        of = f" of {d['max_attempts']}" if d.get("max_attempts") else ""
        return (
            f"attempt {d.get('attempt')}{of} failed ({event.message}); retrying in "
            f"{format_duration(float(d.get('delay_s') or 0))}"
        )
    if kind == "step_done":
        if d.get("action") == "no-op":
            return str(d.get("done") or "up to date")
        tries = int(d.get("attempts") or 0)
        after = f" ({tries} attempts)" if tries > 1 else ""
        return f"{d.get('done') or d.get('action', 'done')}{_took(d)}{after}"
    if kind == "step_skipped":
        return f"skipped ({event.message})" if event.message else "skipped"
    if kind == "step_failed":
        return f"FAILED{_took(d, 'after')}: {event.message}"
    if kind == "step_interrupted":
        return f"interrupted: {event.message}"
    if kind == "step_destroyed":
        return f"{event.message}{_took(d)}"
    if kind in {"step_progress", "run_note", "run_stopping", "run_finished", "step_destroying"}:
        return event.message or None
    return None


def _for_text(event: Event) -> bool:
    """Whether a text sink shows `event` (a run that ended well is summed up on stdout)."""
    return not (event.kind == "run_finished" and event.data.get("result") == "ok")


class PlainSink:
    """One timestamped line per event, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        text = describe(event) if _for_text(event) else None
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
    status: str = "pending"
    running: bool = False
    started: float | None = None
    finished: float | None = None
    activity: str = ""
    mark: str = " "


class LiveSink:
    """A rich live table of steps: status with spinner, elapsed time, current activity."""

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
        # The table is final when the run ends: stop redrawing it, so what the command
        # prints next (its summary) comes below it; a new run starts it again.
        if event.kind == "run_finished":
            self.live.stop()
        elif event.kind == "run_started" and not self.live.is_started:
            self.live.start()

    def _apply(self, event: Event) -> None:
        if event.kind == "run_started":
            for key in event.data.get("steps", []):
                self.rows.setdefault(key, _Row())
            return
        if event.step is None:
            text = describe(event) if _for_text(event) else None
            if text:
                self.notes.append(redact(text))
            return
        row = self.rows.setdefault(event.step, _Row())
        text = describe(event) or ""
        kind, d = event.kind, event.data
        if kind == "step_checking":
            row.status, row.running, row.started = "checking", True, event.ts
        elif kind == "step_applying":
            row.status = str(d.get("verb") or d.get("action", "applying"))
        elif kind == "step_destroying":
            row.status, row.running, row.started = "deleting", True, event.ts
        elif kind in {"step_done", "step_destroyed"}:
            outcome = str(d.get("outcome", "done"))
            row.status = "up to date" if outcome == "unchanged" else str(d.get("verb") or outcome)
            row.running, row.finished, row.mark = False, event.ts, _MARKS["done"]
            if kind == "step_done" and outcome != "unchanged":
                text = str(d.get("done") or text)  # the time column shows how long it took
        elif kind == "step_planned":
            row.status = str(d.get("action"))
        elif kind in {"step_skipped", "step_failed", "step_interrupted"}:
            row.status = kind.removeprefix("step_")
            row.running, row.finished, row.mark = False, event.ts, _MARKS[row.status]
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
                mark: Any = Spinner("dots") if row.running else row.mark
                end = row.finished or now
                elapsed = f"{end - row.started:.0f}s" if row.started else ""
                table.add_row(mark, key, row.status, elapsed, row.activity[:100])
            for note in self.notes[-3:]:
                table.add_row("", "", "", "", note)
        return table

    def close(self) -> None:
        self.live.stop()


_MARKS = {
    "done": "[green]✓[/]",
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
