"""bench/quickstart.py's critical path counts the guest's work a run command left behind
(the benchmark itself is not run here)."""

from __future__ import annotations

from batchimage.steps.generalize_scripts import DEPROVISION_DELAY_S, linux_launcher
from bench.quickstart import Write, left_behind

URL = "https://sandbox/vm/runCommands/generalize-1"
OP = {"start": 100.0, "due": 100.45}  # a 30 s run command at time scale 0.015


def command(script: str) -> Write:
    body = {"properties": {"source": {"script": script}}}
    return Write("generalize", "PUT", URL, 201, "op", body)


def test_generalize_waits_for_its_deprovisioning_unit_after_the_command_ends() -> None:
    spans = left_behind(command(linux_launcher("waagent -deprovision+user -force")), OP, 0.015)
    assert spans == [(100.45, 100.45 + DEPROVISION_DELAY_S * 0.015)]


def test_a_command_that_leaves_nothing_behind_adds_nothing() -> None:
    assert left_behind(command("echo hi"), OP, 0.015) == []
    assert left_behind(command(linux_launcher("echo hi")), None, 0.015) == []
