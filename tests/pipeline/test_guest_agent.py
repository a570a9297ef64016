"""The tool against run commands that cannot end: the action run command's 409 Conflict
stops the step at once (never retried for its deadline) with the VM, the code and what to
do; a customize script that shuts the VM down or stops the guest agent fails its step at
once instead of waiting out the step's timeout."""

from __future__ import annotations

import time
from typing import Any

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.azure.pollers import abandon
from batchimage.core.errors import StepFailedError
from batchimage.spec import load_spec
from batchimage.steps.names import BuildNames
from tests.pipeline.harness import NO_MANAGED_RUN_COMMANDS, Harness


def first_step(script: str) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["cleanup"] = "never"
        data["image"]["customize"][0] = {"name": "first", "shell": script}

    return edit


def apply_fails(pipeline: Harness, spec_path: Any) -> tuple[StepFailedError, float]:
    """Apply `spec_path`, which must fail; the error and how long it took (seconds)."""
    started = time.monotonic()
    with pytest.raises(StepFailedError) as failed:
        pipeline.apply(spec_path)
    return failed.value, time.monotonic() - started


def test_a_run_command_in_progress_stops_the_step_at_once(
    pipeline: Harness, clients: AzureClients
) -> None:
    """A cloud without managed run commands; the build VM still runs an action run command
    whose guest agent stopped (here: a foreground deprovisioning someone sent)."""
    pipeline.admin.set_faults([NO_MANAGED_RUN_COMMANDS])
    spec_path = pipeline.spec("quickstart.yaml", first_step("echo hello"))
    pipeline.apply(spec_path, target="build.vm")
    vm = BuildNames.of(load_spec(spec_path)).vm
    stuck = {"commandId": "RunShellScript", "script": ["waagent -deprovision+user -force"]}
    abandon(clients.compute.virtual_machines.begin_run_command("sandbox-rg", vm, stuck))
    error, elapsed = apply_fails(pipeline, spec_path)
    message = str(error)
    assert error.step == "customize.0"
    assert "Conflict: Run command extension execution is in progress" in message
    assert f"on {vm}" in message and "HTTP 409" in message
    assert "batchimage destroy" in message and "instance view" in message
    retries = [e for e in pipeline.events.events if e.kind == "step_retrying"]
    assert retries == [], [e.message for e in retries]
    assert elapsed < 60, elapsed


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("apt-get update\nshutdown -h now", "is stopped while run command"),
        ("sudo waagent -deprovision+user -force", "stopped reporting (Not Ready)"),
    ],
)
def test_a_customize_script_that_takes_the_guest_away_fails_at_once(
    pipeline: Harness, script: str, reason: str
) -> None:
    spec_path = pipeline.spec("quickstart.yaml", first_step(script))
    error, elapsed = apply_fails(pipeline, spec_path)
    message = str(error)
    assert error.step == "customize.0"
    assert reason in message and "will never end" in message
    assert "must not stop the guest agent or shut the VM down" in message
    assert "batchimage destroy" in message
    assert elapsed < 120, elapsed  # not the step's 1800 s timeout
