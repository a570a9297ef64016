"""Generalize against the sandbox's guest agent: Linux schedules the deprovisioning in a
systemd unit so its run command reports first, then waits for the VM to power off; a run
cut short after that resumes without deprovisioning twice; a VM stopped before it was
deprovisioned is started and deprovisioned; a generalized VM stays build.vm's and is never
updated (Azure refuses any update to it); a custom command is scheduled the same way;
Windows sysprep that stops the VM under the tool's own check, or just before it, is a
success."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from batchimage.azure.clients import AzureClients
from batchimage.core.errors import StepFailedError
from batchimage.core.ownership import Marks
from batchimage.spec import load_spec
from batchimage.steps.names import BuildNames
from tests.pipeline.harness import Harness
from tests.sandbox.compute_helpers import power_state

LAUNCHER = "systemd-run --unit=batchimage-generalize"


def launches(content: dict[str, Any]) -> list[str]:
    """The deprovisioning launchers a disk's manifest recorded."""
    return [m["script"] for m in content["manifest"] if LAUNCHER in m.get("script", "")]


def keep_vm(data: dict[str, Any]) -> None:
    data["cleanup"] = "never"


def test_linux_deprovisioning_is_scheduled_after_the_run_command(
    pipeline: Harness, clients: AzureClients
) -> None:
    spec_path = pipeline.spec("quickstart.yaml", keep_vm)
    pipeline.apply(spec_path)
    version = pipeline.outputs(spec_path, "capture.version")
    content = pipeline.image_content(version["version_id"])
    assert content["deprovisioned"] is True
    [script] = launches(content)
    # No foreground deprovisioning: the launcher returns, the unit does the work later.
    assert "--on-active=60" in script and "(waagent -deprovision+user -force)" in script
    # The launcher's run command reported (it did not wait on the deprovisioning).
    vm = BuildNames.of(load_spec(spec_path)).vm
    commands = clients.compute.virtual_machine_run_commands
    [name] = [
        c.name
        for c in commands.list_by_virtual_machine("sandbox-rg", vm)
        if "generalize-" in c.name
    ]
    found = commands.get_by_virtual_machine("sandbox-rg", vm, name, expand="instanceView")
    assert found.provisioning_state == "Succeeded"
    assert (found.instance_view.execution_state, found.instance_view.exit_code) == ("Succeeded", 0)
    said = [e.message for e in pipeline.events.events if e.kind == "step_progress"]
    assert any("in 60 s, then powering it off: waagent" in m for m in said)
    tags = clients.compute.virtual_machines.get("sandbox-rg", vm).tags
    assert Marks.Tag.GENERALIZE in tags
    # what the spec's tag rule counts on: the spec's tags and BUILD_VM_MARKS of ours
    ours = {k for k in tags if k.startswith("batchimage-")}
    assert len(ours) == Marks.Tag.BUILD_VM_MARKS, sorted(ours)
    assert len(tags) == len(load_spec(spec_path).tags) + Marks.Tag.BUILD_VM_MARKS


def test_a_run_cut_short_after_the_launch_does_not_deprovision_twice(
    pipeline: Harness, clients: AzureClients
) -> None:
    """Deallocate fails once (a permanent error) after the guest deprovisioned and powered
    off; the next apply finds the VM stopped and launched, and only deallocates."""
    spec_path = pipeline.spec("quickstart.yaml", keep_vm)
    rule = {
        "kind": "status",
        "method": "POST",
        "path": "/deallocate$",
        "status": 400,
        "code": "BadRequest",
        "message": "The request is invalid.",
        "times": 1,
    }
    pipeline.admin.set_faults([rule])
    with pytest.raises(StepFailedError) as failed:
        pipeline.apply(spec_path)
    assert failed.value.step == "generalize"
    pipeline.admin.clear_faults()
    vm = BuildNames.of(load_spec(spec_path)).vm
    assert power_state(clients, "sandbox-rg", vm) == "stopped"
    pipeline.apply(spec_path)
    version = pipeline.outputs(spec_path, "capture.version")
    content = pipeline.image_content(version["version_id"])
    assert content["deprovisioned"] is True
    assert len(launches(content)) == 1


def test_a_vm_stopped_before_it_was_deprovisioned_is_started_first(
    pipeline: Harness, clients: AzureClients
) -> None:
    spec_path = pipeline.spec("quickstart.yaml", keep_vm)
    pipeline.apply(spec_path, target="customize.1")
    vm = BuildNames.of(load_spec(spec_path)).vm
    clients.compute.virtual_machines.begin_power_off("sandbox-rg", vm).result()
    pipeline.apply(spec_path)
    content = pipeline.image_content(pipeline.outputs(spec_path, "capture.version")["version_id"])
    assert content["deprovisioned"] is True and len(launches(content)) == 1
    said = [e.message for e in pipeline.events.events if e.kind == "step_progress"]
    assert any("was not deprovisioned: starting it" in m for m in said)


def test_a_run_stopped_after_generalize_resumes_without_touching_the_vm(
    pipeline: Harness, clients: AzureClients
) -> None:
    """Generalize tags the VM but leaves build.vm's step and fingerprint tags on it, so a
    run resumed before capture finds the build VM up to date instead of updating it."""
    spec_path = pipeline.spec("quickstart.yaml", keep_vm)
    pipeline.apply(spec_path, target="generalize")
    vm = BuildNames.of(load_spec(spec_path)).vm
    tags = clients.compute.virtual_machines.get("sandbox-rg", vm).tags
    record = pipeline.state(spec_path).steps["build.vm"]
    assert (tags[Marks.Tag.STEP], tags[Marks.Tag.FINGERPRINT]) == ("build.vm", record.fingerprint)
    assert Marks.Tag.GENERALIZE in tags
    result = pipeline.apply(spec_path)
    assert result.outcomes["build.vm"] == "unchanged"
    assert result.outcomes["capture.version"] == "created"


def test_a_generalized_vm_of_the_same_image_is_never_updated(pipeline: Harness) -> None:
    """A spec change that does not change the image (its tags) after generalize: the VM's
    work is done, so build.vm leaves it as it is and capture goes on."""
    spec_path = pipeline.spec("quickstart.yaml", keep_vm)
    pipeline.apply(spec_path, target="generalize")
    data = yaml.safe_load(spec_path.read_text())
    data["tags"]["owner"] = "someone-else"
    spec_path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = pipeline.apply(spec_path)
    assert result.outcomes["build.vm"] == "unchanged"
    assert result.outcomes["capture.version"] == "created"


def test_a_custom_generalize_command_is_scheduled_the_same_way(pipeline: Harness) -> None:
    custom = "rm -rf /var/cache/apt/archives/*.deb && waagent -force -deprovision"

    def edit(data: dict[str, Any]) -> None:
        data["image"]["generalize"] = {"command": custom}

    spec_path = pipeline.spec("quickstart.yaml", edit)
    pipeline.apply(spec_path)
    content = pipeline.image_content(pipeline.outputs(spec_path, "capture.version")["version_id"])
    [script] = launches(content)
    assert f"({custom}) && shutdown -h now" in script
    assert content["deprovisioned"] is True


def test_sysprep_stopping_the_vm_under_its_check_is_a_success(
    pipeline: Harness, clients: AzureClients
) -> None:
    """Sysprep finishes (and shuts the VM down) while the tool's first sysprep check waits
    to report: that check never ends, and the step takes the stop as sysprep's success."""
    spec_path = pipeline.spec("windows-server.yaml")
    # Sysprep runs 5,000 simulated seconds (a second here); a run command reports 10,000
    # after its PUT.
    pipeline.admin.configure(durations={"vm.sysprep": 5000.0, "run_command.create": 10000.0})
    try:
        started = time.monotonic()
        pipeline.apply(spec_path)
        elapsed = time.monotonic() - started
    finally:
        pipeline.admin.configure(durations={"vm.sysprep": 60.0, "run_command.create": 30.0})
    content = pipeline.image_content(pipeline.outputs(spec_path, "capture.version")["version_id"])
    assert content["deprovisioned"] is True
    said = [e.message for e in pipeline.events.events if e.kind == "step_progress"]
    assert any("the sysprep check ended with the guest: stopped" in m for m in said)
    assert elapsed < 300, elapsed  # not the check's own timeout


def test_sysprep_stopping_the_vm_before_its_check_starts_is_a_success(
    pipeline: Harness, clients: AzureClients
) -> None:
    """Sysprep shuts the VM down between the tool's read (running) and its first sysprep
    check: Azure refuses that run command (409 OperationNotAllowed, the VM is not running),
    and the step takes the stop as sysprep's success. The check's PUT is held 8 s at the
    sandbox's door; sysprep ends 4,000 simulated s (under a second) after it started."""
    spec_path = pipeline.spec("windows-server.yaml")
    pipeline.admin.configure(durations={"vm.sysprep": 4000.0})
    held = {
        "kind": "delay",
        "method": "PUT",
        "path": "/runCommands/generalize-diagnose$",
        "delay": 8.0,
        "times": 1,
    }
    pipeline.admin.set_faults([held])
    try:
        pipeline.apply(spec_path)
    finally:
        pipeline.admin.configure(durations={"vm.sysprep": 60.0})
    content = pipeline.image_content(pipeline.outputs(spec_path, "capture.version")["version_id"])
    assert content["deprovisioned"] is True
    said = [e.message for e in pipeline.events.events if e.kind == "step_progress"]
    assert any("the sysprep check found" in m and "stopped already" in m for m in said), said
