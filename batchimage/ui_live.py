"""The live table of a run on a terminal (`LiveSink`): one row per step, fitted to the screen.

- Nothing is drawn before `run_started`: what a command prints before its run (the plan,
  a question and the answer typed to it) stays plain text that nobody redraws.
- One line per row, whatever the width: the activity is cut to the room left. When the
  steps outnumber the lines, finished and pending rows give way to running and failed
  ones, and one line counts the rows left out; the final table is drawn in full.
- Lines that are not a step's row go above the table, at column 0, and stay: run notes
  ("starting the sandbox…", "SIGINT: stopping…"), step notices (`ctx.say(..., notice=True)`,
  each said once), and a run's end line (below the final table).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from batchimage.core.events import Event
from batchimage.core.redact import redact
from batchimage.ui import describe, shows_in_text

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

MARKS = {
    "done": "[green]✓[/]",
    "skipped": "[dim]-[/]",
    "failed": "[red]✗[/]",
    "interrupted": "[yellow]![/]",
}
ACTIVE = ("failed", "interrupted")  # finished rows that stay in sight, like running ones
GAP = 2  # columns between two table columns
# Columns left free at the right: the terminal echoes a Ctrl-C as "^C" after the last row,
# and a row that filled the line would wrap it, pushing the table down one line that the
# next redraw does not know of (a stale copy of the table's top would stay on screen).
ECHO_ROOM = 2


@dataclass
class _Row:
    status: str = "pending"
    running: bool = False
    started: float | None = None
    finished: float | None = None
    activity: str = ""
    mark: str = " "
    spinner: Any = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Running, or ended in a way a person must see (failed, interrupted)."""
        return self.running or self.status in ACTIVE

    def elapsed(self, now: float) -> str:
        if self.started is None:
            return ""
        return f"{(self.finished or now) - self.started:.0f}s"


def fit(rows: list[tuple[str, _Row]], lines: int) -> tuple[list[tuple[str, _Row]], str]:
    """The rows to show in `lines` lines, in their order, and the line that counts the rest
    ("" when all fit): running and failed rows first, then the latest finished, then the
    next pending."""
    if len(rows) <= lines:
        return rows, ""
    room = max(lines - 1, 0)
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            0 if rows[i][1].active else 1 if rows[i][1].finished else 2,
            -(rows[i][1].finished or 0.0),
            i,
        ),
    )
    kept = sorted(order[:room])
    left = [rows[i][1] for i in order[room:]]
    counts: dict[str, int] = {}
    for row in left:
        word = "pending" if row.finished is None and not row.running else row.status
        counts[word] = counts.get(word, 0) + 1
    parts = ", ".join(f"{n} {word}" for word, n in counts.items())
    return [rows[i] for i in kept], f"… {len(left)} more: {parts}"


class LiveSink:
    """A rich live table of steps: status with spinner, elapsed time, current activity."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream, highlight=False)
        self.rows: dict[str, _Row] = {}
        self.final = False
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self.live = Live(self, console=self.console, refresh_per_second=8, transient=False)

    def emit(self, event: Event) -> None:
        if event.kind == "run_started":
            with self._lock:
                for key in event.data.get("steps", []):
                    self.rows.setdefault(key, _Row())
                self.final = False
            self.live.start(refresh=True)
            return
        line = self._line(event)
        if event.step is not None:
            with self._lock:
                self._apply(event)
        # The table is final when the run ends: drawn once more in full, then left alone,
        # so the end line and what the command prints next come below it.
        if event.kind == "run_finished":
            with self._lock:
                self.final = True
            self.live.stop()
        if line:
            from rich.text import Text

            self.console.print(Text(line))

    def _line(self, event: Event) -> str | None:
        """What `event` prints above the table (at column 0), if anything."""
        if event.step is None:
            text = describe(event) if shows_in_text(event) else None
            return redact(text) if text else None
        if event.kind == "step_progress" and event.data.get("notice"):
            text = redact(f"{event.step}: {event.message}")
            with self._lock:
                if event.message in self._said:
                    return None
                self._said.add(event.message)
            return text
        return None

    def _apply(self, event: Event) -> None:
        assert event.step is not None
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
            row.running, row.finished, row.mark = False, event.ts, MARKS["done"]
            if kind == "step_done" and outcome != "unchanged":
                text = str(d.get("done") or text)  # the time column shows how long it took
        elif kind == "step_planned":
            row.status = str(d.get("action"))
        elif kind in {"step_skipped", "step_failed", "step_interrupted"}:
            row.status = kind.removeprefix("step_")
            row.running, row.finished, row.mark = False, event.ts, MARKS[row.status]
        row.activity = " ".join(redact(text).split())

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self._lock:
            rows = list(self.rows.items())
            final = self.final
        yield from draw(rows, final, "step", console, options)

    def close(self) -> None:
        self.live.stop()


def draw(
    rows: list[tuple[str, _Row]], final: bool, label: str, console: Console, options: ConsoleOptions
) -> RenderResult:
    """The table of `rows` (named in a column headed `label`: a run's steps, or the specs
    of a command that runs many), fitted to the screen unless `final`."""
    from rich.spinner import Spinner
    from rich.table import Table
    from rich.text import Text

    now = time.time()
    for _, row in rows:
        if row.running and row.spinner is None:
            row.spinner = Spinner("dots")
    height = options.height or console.size.height
    shown, rest = (rows, "") if final else fit(rows, max(height - 2, 1))
    cells = [
        (row.spinner if row.running else row.mark, key, row.status, row.elapsed(now), row)
        for key, row in shown
    ]
    step_w = max([len(label), *(len(key) for key, _ in shown)])
    status_w = max([len("status"), *(len(c[2]) for c in cells)])
    time_w = max([len("time"), *(len(c[3]) for c in cells)])
    width = options.max_width - ECHO_ROOM
    activity_w = width - (1 + step_w + status_w + time_w + 4 * GAP)
    if activity_w < 12:  # a narrow terminal: the step names give way too
        step_w = max(8, step_w - (12 - activity_w))
        activity_w = max(1, width - (1 + step_w + status_w + time_w + 4 * GAP))
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for name, column_w in (
        ("", 1),
        (label, step_w),
        ("status", status_w),
        ("time", time_w),
        ("activity", activity_w),
    ):
        table.add_column(name, width=column_w, no_wrap=True, overflow="ellipsis")
    for mark, key, status, elapsed, row in cells:
        table.add_row(mark, Text(key), Text(status), elapsed, Text(row.activity))
    yield table
    if rest:
        yield Text(rest[:activity_w], overflow="ellipsis", no_wrap=True)
