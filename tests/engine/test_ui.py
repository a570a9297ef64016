"""Progress sinks: JSON lines, plain lines, the live table; all redacted."""

from __future__ import annotations

import io
import json

from batchimage.ui import Event, JsonSink, LiveSink, PlainSink, make_sink

SAS = "https://a.blob.core.windows.net/c/x.vhd?sv=1&sig=SECRETSIG"


def sample() -> list[Event]:
    return [
        Event(
            "run_started",
            data={"command": "apply", "pipeline": "demo", "run_id": "r1", "steps": ["vm", "pool"]},
        ),
        Event("step_checking", step="vm", message="VM bi-demo-vm"),
        Event("step_applying", step="vm", message="does not exist yet", data={"action": "create"}),
        Event(
            "step_waiting",
            step="vm",
            message="VM bi-demo-vm to be created",
            data={"elapsed_s": 42.4},
        ),
        Event(
            "step_retrying",
            step="vm",
            message=f"TooManyRequests: slow down {SAS}",
            data={"attempt": 1, "delay_s": 7.0},
        ),
        Event("step_done", step="vm", data={"action": "created", "duration_s": 61.25}),
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
    text = out.getvalue()
    assert "vm: waiting for VM bi-demo-vm to be created (42 s so far)" in text
    assert "vm: attempt 1 failed (TooManyRequests: slow down" in text
    assert "retrying in 7.0 s" in text
    assert "vm: created in 61.2 s" in text or "vm: created in 61.3 s" in text
    assert "pool: FAILED after 1.0 s: PoolQuotaReached" in text
    assert "SECRETSIG" not in text


def test_live_sink_renders_a_table_of_steps() -> None:
    from rich.console import Console

    out = io.StringIO()
    sink = LiveSink(out)
    for event in sample():
        sink.emit(event)
    sink.close()
    console = Console(file=io.StringIO(), width=140, force_terminal=False)
    console.print(sink)
    table = console.file.getvalue()  # type: ignore[attr-defined]
    assert "vm" in table and "created" in table and "pool" in table and "failed" in table
    assert "SECRETSIG" not in table


def test_make_sink_picks_by_format_and_terminal() -> None:
    assert isinstance(make_sink("json", io.StringIO()), JsonSink)
    assert isinstance(make_sink("text", io.StringIO()), PlainSink)
