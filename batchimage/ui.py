"""Progress display: events from the engine (`batchimage.core.events`), shown three ways.

- `LiveSink` (in `ui_live`): on a terminal, a rich live table of steps (spinner, elapsed
  time, what each step is doing now, e.g. "waiting for build VM bi-demo-vm"), drawn from
  the run's start and fitted to the screen; other lines above it at column 0.
- `PlainSink`: when not a terminal, one timestamped line per event (after the spec's name
  when a command runs many), each saying once what happens in plain words ("creating
  gallery g", "still waiting for VM v (2 min so far)", "created gallery g in 3.1 s");
  times only where they tell something (1 s or more).
- `JsonSink`: `--log-format json`, one JSON object per line (event, step, message,
  durations, attempt, ...) for CI.

The text sinks leave out a successful `run_finished`: the command prints the summary on
stdout. Every sink redacts secrets; sinks are thread-safe (steps run concurrently).
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import Any, TextIO

from batchimage.core.events import Event, EventSink, format_duration
from batchimage.core.redact import redact


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


def shows_in_text(event: Event) -> bool:
    """Whether a text sink shows `event` (a run that ended well is summed up on stdout)."""
    return not (event.kind == "run_finished" and event.data.get("result") == "ok")


class PlainSink:
    """One timestamped line per event, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        text = describe(event) if shows_in_text(event) else None
        if text is None:
            return
        stamp = datetime.fromtimestamp(event.ts).strftime("%H:%M:%S")
        who = f"{event.step}: " if event.step else ""
        if event.data.get("spec"):  # one of many specs in one command
            who = f"{event.data['spec']}: {who}"
        with self._lock:
            self.stream.write(redact(f"{stamp} {who}{text}") + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass


def make_sink(log_format: str, stream: TextIO | None = None) -> EventSink:
    """The sink for `--log-format` on `stream` (stderr): json, live table on a TTY, or lines."""
    out = stream or sys.stderr
    if log_format == "json":
        return JsonSink(out)
    if out.isatty():
        from batchimage.ui_live import LiveSink

        return LiveSink(out)
    return PlainSink(out)
