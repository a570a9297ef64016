"""The live view of many specs in one command, on a terminal (`FleetLiveSink`): one row per
spec (mark, spec, status, time, what it is doing now: its latest step's event), drawn from
the first spec's start; lines that are not a row (run notes, notices) go above it. The
rows are fitted to the screen as a run's steps are (`ui_live.fit`), and drawn in full once
every spec is over.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from batchimage.core.events import Event
from batchimage.core.redact import redact
from batchimage.ui import describe, shows_in_text
from batchimage.ui_live import MARKS, _Row, draw

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

RESULT_MARKS = {"ok": "done", "no changes": "done", "changes": "done", "not started": "skipped"}


class FleetLiveSink:
    """A rich live table with a row per spec; events carry the spec's name (`spec`)."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream, highlight=False)
        self.rows: dict[str, _Row] = {}
        self.final = False
        self._started = False
        self._lock = threading.Lock()
        self.live = Live(self, console=self.console, refresh_per_second=8, transient=False)

    def add(self, name: str, file: str) -> None:
        """A row for spec `name` (waiting to start)."""
        with self._lock:
            self.rows.setdefault(name, _Row(status="queued"))

    def emit(self, event: Event) -> None:
        name = str(event.data.get("spec") or "")
        line = None
        with self._lock:
            row = self.rows.get(name)
            if row is not None:
                line = self._apply(row, event)
            start = not self._started and event.kind == "run_started"
            self._started = self._started or start
        if start:
            self.live.start(refresh=True)
        if line:
            from rich.text import Text

            self.console.print(Text(redact(line)))

    def _apply(self, row: _Row, event: Event) -> str | None:
        """Update `row` from `event`; the line to print above the table, if any."""
        d = event.data
        if event.kind == "run_started":
            row.status = str(d.get("command") or "running")
            row.running, row.started = True, event.ts
            return None
        if event.kind == "run_finished":
            row.activity = " ".join(redact(event.message).split())
            return None
        if event.step is None:
            text = describe(event) if shows_in_text(event) else None
            return f"{d.get('spec')}: {text}" if text else None
        if event.kind == "step_progress" and d.get("notice"):
            return f"{d.get('spec')}: {event.step}: {event.message}"
        text = describe(event)
        if text:
            row.activity = " ".join(redact(f"{event.step}: {text}").split())
        return None

    def finish(self, outcome: Any) -> None:
        """The spec's row shows its outcome (ok, failed, ...)."""
        with self._lock:
            row = self.rows.get(outcome.name)
            if row is None:
                return
            row.status = outcome.result
            row.running = False
            row.finished = time.time()
            row.started = row.started or row.finished - outcome.duration_s
            row.mark = MARKS[RESULT_MARKS.get(outcome.result, "failed")]
            if outcome.message:
                row.activity = " ".join(redact(outcome.message).split())

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self._lock:
            rows = list(self.rows.items())
            final = self.final
        yield from draw(rows, final, "spec", console, options)

    def close(self) -> None:
        with self._lock:
            self.final = True
        if self._started:
            self.live.stop()
