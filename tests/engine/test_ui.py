"""Progress sinks: JSON lines, plain lines, the live table; all redacted."""

from __future__ import annotations

import io
import json

from batchimage.core.events import Event, format_duration
from batchimage.ui import JsonSink, PlainSink, make_sink
from batchimage.ui_live import LiveSink

SAS = "https://a.blob.core.windows.net/c/x.vhd?sv=1&sig=SECRETSIG"


def sample() -> list[Event]:
    return [
        Event(
            "run_started",
            message="apply demo: 2 steps (run r1)",
            data={"command": "apply", "pipeline": "demo", "run_id": "r1", "steps": ["vm", "pool"]},
        ),
        Event("step_checking", step="vm", message="VM bi-demo-vm"),
        Event(
            "step_applying",
            step="vm",
            message="does not exist yet",
            data={"action": "create", "verb": "creating", "doing": "creating VM bi-demo-vm"},
        ),
        Event(
            "step_waiting",
            step="vm",
            message="still waiting for VM bi-demo-vm to be created",
            data={"what": "VM bi-demo-vm to be created", "elapsed_s": 42.4},
        ),
        Event(
            "step_retrying",
            step="vm",
            message=f"TooManyRequests: slow down {SAS}",
            data={"attempt": 1, "max_attempts": 6, "delay_s": 7.0},
        ),
        Event(
            "step_done",
            step="vm",
            data={
                "action": "created",
                "verb": "created",
                "done": "created VM bi-demo-vm",
                "outcome": "created",
                "duration_s": 61.25,
                "attempts": 2,
            },
        ),
        Event("step_failed", step="pool", message="PoolQuotaReached", data={"duration_s": 1.0}),
    ]


def test_json_sink_writes_one_redacted_object_per_line() -> None:
    out = io.StringIO()
    sink = JsonSink(out)
    for event in sample():
        sink.emit(event)
    lines = out.getvalue().splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["event"] for d in docs][:3] == ["run_started", "step_checking", "step_applying"]
    assert docs[4]["attempt"] == 1 and docs[4]["delay_s"] == 7.0 and docs[4]["step"] == "vm"
    assert docs[5]["duration_s"] == 61.25
    assert "SECRETSIG" not in out.getvalue() and "sig=REDACTED" in out.getvalue()


def test_plain_sink_says_what_it_waits_for_and_how_long() -> None:
    out = io.StringIO()
    sink = PlainSink(out)
    for event in sample():
        sink.emit(event)
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines[0] == "apply demo: 2 steps (run r1)"
    assert lines[1] == "vm: creating VM bi-demo-vm"  # "does not exist yet" goes without saying
    assert lines[2] == "vm: still waiting for VM bi-demo-vm to be created (42 s so far)"
    assert lines[3].startswith("vm: attempt 1 of 6 failed (TooManyRequests: slow down")
    assert lines[3].endswith("retrying in 7.0 s")
    assert lines[4] == "vm: created VM bi-demo-vm in 1 min 1 s (2 attempts)"
    assert lines[5] == "pool: FAILED after 1.0 s: PoolQuotaReached"
    assert len(lines) == 6  # step_checking is not worth a line
    assert "SECRETSIG" not in out.getvalue()


def text_of(*events: Event) -> list[str]:
    """What PlainSink writes for `events`, without the time stamps."""
    out = io.StringIO()
    sink = PlainSink(out)
    for event in events:
        sink.emit(event)
    return [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]


def test_plain_sink_shows_times_only_when_they_tell_something() -> None:
    assert text_of(
        Event("step_waiting", step="g", message="waiting for gallery g", data={"elapsed_s": 0}),
        Event(
            "step_done",
            step="g",
            data={"action": "created", "done": "created gallery g", "duration_s": 0.2},
        ),
        Event("step_done", step="h", data={"action": "no-op", "duration_s": 0.0}),
        Event("step_failed", step="i", message="BadRequest", data={"duration_s": 0.3}),
    ) == [
        "g: waiting for gallery g",
        "g: created gallery g",
        "h: up to date",
        "i: FAILED: BadRequest",
    ]


def test_plain_sink_gives_the_reason_unless_the_verb_says_it() -> None:
    def applying(action: str, reason: str, doing: str) -> Event:
        return Event(
            "step_applying", step="s", message=reason, data={"action": action, "doing": doing}
        )

    assert text_of(
        applying("create", "does not exist yet", "creating NIC n"),
        applying("update", "input vm_size changed", "updating pool p"),
        applying("create", "resuming: the last run stopped during this step", "running step 0"),
    ) == [
        "s: creating NIC n",
        "s: updating pool p (input vm_size changed)",
        "s: running step 0 (resuming: the last run stopped during this step)",
    ]


def test_text_sinks_leave_a_good_summary_to_the_command_but_show_a_bad_one() -> None:
    def finished(result: str) -> Event:
        return Event("run_finished", message=f"apply {result}: 1 created", data={"result": result})

    assert text_of(finished("ok"), finished("failed")) == ["apply failed: 1 created"]


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.04, 8.25, 42.4, 60, 185, 3600, 3720)] == [
        "0.0 s",
        "8.2 s",
        "42 s",
        "1 min",
        "3 min 5 s",
        "1 h",
        "1 h 2 min",
    ]


def test_live_sink_renders_a_table_of_steps() -> None:
    from rich.console import Console

    out = io.StringIO()
    sink = LiveSink(out)
    for event in sample():
        sink.emit(event)
    sink.emit(Event("run_finished", message="apply complete: 1 created", data={"result": "ok"}))
    assert not sink.live.is_started  # the table is final: the summary prints below it
    sink.close()
    console = Console(file=io.StringIO(), width=140, force_terminal=False)
    console.print(sink)
    table = console.file.getvalue()  # type: ignore[attr-defined]
    rows = {line.split()[1]: line for line in table.splitlines()[1:]}
    assert rows["vm"].split()[2] == "created" and "created VM bi-demo-vm" in rows["vm"]
    assert rows["pool"].split()[2] == "failed" and "PoolQuotaReached" in rows["pool"]
    assert "apply complete" not in table
    assert "SECRETSIG" not in table


def test_make_sink_picks_by_format_and_terminal() -> None:
    assert isinstance(make_sink("json", io.StringIO()), JsonSink)
    assert isinstance(make_sink("text", io.StringIO()), PlainSink)
