"""The live table of many specs (`FleetLiveSink`), rendered by rich as on a terminal: a
row per spec in the order given, each showing its latest step's event while it runs and
its result once over; notices go above the table after the spec's name."""

from __future__ import annotations

import io

from rich.console import Console

from batchimage.commands.fleet import Outcome
from batchimage.core.events import Event
from batchimage.ui_fleet import FleetLiveSink


def rendered(sink: FleetLiveSink, width: int = 100) -> list[str]:
    console = Console(file=io.StringIO(), width=width, height=24, force_terminal=False)
    console.print(sink)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def test_a_row_per_spec_with_its_latest_event_then_its_result() -> None:
    out = io.StringIO()
    sink = FleetLiveSink(out)
    for name in ("web", "gpu", "batch"):
        sink.add(name, f"specs/{name}.yaml")
    sink.emit(Event("run_started", data={"command": "apply", "spec": "gpu", "steps": []}))
    sink.emit(
        Event(
            "step_waiting",
            step="build.vm",
            message="waiting for build VM gpu-vm",
            data={"spec": "gpu"},
        )
    )
    sink.emit(
        Event(
            "step_progress",
            step="preflight",
            message="quota is tight",
            data={"spec": "gpu", "notice": True},
        )
    )
    sink.finish(Outcome("specs/web.yaml", "web", "failed", 1, 2.0, "", "step x failed"))
    lines = rendered(sink)
    assert lines[0].split() == ["spec", "status", "time", "activity"]
    web, gpu, batch = lines[1:4]
    assert "web" in web and "failed" in web and "step x failed" in web
    assert "gpu" in gpu and "apply" in gpu and "build.vm: waiting for build VM gpu-vm" in gpu
    assert "batch" in batch and "queued" in batch
    sink.close()
    assert "gpu: preflight: quota is tight" in out.getvalue()
