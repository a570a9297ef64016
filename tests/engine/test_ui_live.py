"""The live table's layout rules, rendered by rich as on a terminal of a given size (the
pseudo-terminal tests in test_terminal.py see the same through a terminal emulator)."""

from __future__ import annotations

import io
import re

from rich.console import Console

from batchimage.core.events import Event
from batchimage.ui_live import LiveSink

KEYS = [f"customize.{n}" for n in range(24)] + ["pool.a", "pool.a.retire", "pool.b", "cleanup"]


def rendered(sink: LiveSink, width: int = 80, height: int = 24) -> list[str]:
    console = Console(file=io.StringIO(), width=width, height=height, force_terminal=False)
    console.print(sink)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def started(out: io.StringIO) -> LiveSink:
    sink = LiveSink(out)
    sink.emit(Event("run_started", data={"command": "apply", "steps": KEYS}))
    return sink


def done(key: str) -> Event:
    return Event("step_done", step=key, data={"outcome": "changed", "verb": "ran", "done": "ran"})


def creating(key: str) -> list[Event]:
    return [
        Event("step_checking", step=key),
        Event(
            "step_applying",
            step=key,
            data={
                "action": "create",
                "verb": "creating",
                "doing": f"creating Batch pool {key} " * 5,
            },
        ),
    ]


def test_nothing_is_drawn_before_the_run_starts() -> None:
    out = io.StringIO()
    sink = LiveSink(out)
    sink.emit(Event("run_note", message="starting the sandbox (the local Azure) in sb…"))
    assert out.getvalue() == "starting the sandbox (the local Azure) in sb…\n"
    assert not sink.live.is_started
    sink.close()


class Tty(io.StringIO):
    """Written to as a terminal is (rich draws the live table with cursor moves)."""

    def isatty(self) -> bool:
        return True


def plain(written: str) -> list[str]:
    """The lines of `written`, escape sequences and redrawn parts (before a CR) removed."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", written)
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n")]


def test_notes_and_the_end_line_are_lines_of_their_own_not_rows() -> None:
    out = Tty()
    sink = started(out)
    for event in creating("pool.a"):
        sink.emit(event)
    sink.emit(Event("run_stopping", message="SIGINT: stopping; letting 1 in-flight call settle"))
    sink.emit(Event("step_interrupted", step="pool.a", message="stopped while waiting"))
    sink.emit(Event("run_finished", message="apply interrupted after 3 s", data={"result": "x"}))
    assert not sink.live.is_started
    lines = plain(out.getvalue())
    assert "SIGINT: stopping; letting 1 in-flight call settle" in lines
    assert lines[-2:] == ["apply interrupted after 3 s", ""]  # below the final table
    table = "\n".join(rendered(sink))
    assert "SIGINT" not in table and "apply interrupted" not in table


def test_a_notice_is_said_once_above_the_table() -> None:
    out = io.StringIO()
    sink = started(out)
    for key in ("customize.0", "customize.2"):
        sink.emit(Event("step_progress", step=key, message="no scripts run", data={"notice": True}))
        sink.emit(Event("step_progress", step=key, message="in VM v"))
    sink.close()
    said = [line for line in out.getvalue().splitlines() if "no scripts run" in line]
    assert said == ["customize.0: no scripts run"]


def test_rows_fit_the_screen_and_running_ones_stay_in_sight() -> None:
    sink = started(io.StringIO())
    for key in KEYS[:20]:
        sink.emit(done(key))
    for key in ("pool.a", "pool.b"):
        for event in creating(key):
            sink.emit(event)
    lines = rendered(sink, width=80, height=24)
    assert len(lines) <= 23 and max(len(line) for line in lines) <= 78
    rows = {line[3:].split()[0]: line for line in lines[1:-1]}
    assert rows["pool.a"].split()[2] == "creating" and rows["pool.b"].split()[2] == "creating"
    assert rows["pool.a"].endswith("…")  # the activity is cut, the row not wrapped
    assert lines[-1].startswith(f"… {len(KEYS) - len(rows)} more: ")
    assert "pending" in lines[-1] and "ran" in lines[-1]
    assert "customize.19" in rows  # the latest finished before older ones

    sink.emit(Event("run_finished", message="apply complete", data={"result": "ok"}))
    final = rendered(sink, width=80, height=24)
    assert [line[3:].split()[0] for line in final[1:]] == KEYS  # in full, once the run is over
