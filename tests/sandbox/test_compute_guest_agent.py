"""Run commands and the guest agent, through the real ComputeManagementClient: a script
that deprovisions (or powers off) in its foreground never reports - the old generalize
request shapes hang, the agent reports Not Ready, every later action run command gets
409 Conflict, even after a restart - while one that leaves the work to a systemd unit a
minute later reports first; one action run command at a time, 90 minutes at most; output
keeps its last 4,096 bytes; a managed command in flight when the VM stops never ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from batchimage.azure.clients import AzureClients
from batchimage.azure.pollers import abandon
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.steps.generalize_scripts import LINUX_DEPROVISION, linux_launcher
from tests.sandbox import batch_support
from tests.sandbox import test_compute_runcommands as runcommands
from tests.sandbox.compute_helpers import (
    account_blob,
    create_vm,
    error_code,
    linux_body,
    make_nic,
    make_storage,
    output_blob_url,
    power_state,
    windows_body,
)

BUSY = (
    "Run command extension execution is in progress. Please wait for completion before "
    "invoking a run command."
)

durations = batch_support.durations
group, vm, config = runcommands.group, runcommands.vm, runcommands.config
manifest = runcommands.manifest


def action(clients: AzureClients, group: str, vm: str, *lines: str) -> Any:
    """Start a RunShellScript action run command; returns its poller."""
    body = {"commandId": "RunShellScript", "script": list(lines)}
    return clients.compute.virtual_machines.begin_run_command(group, vm, body)


def agent_status(clients: AzureClients, group: str, vm: str) -> tuple[str, str, str]:
    view = clients.compute.virtual_machines.instance_view(group, vm).vm_agent
    status = view.statuses[0]
    return (view.vm_agent_version, status.code, status.display_status)


def old_generalize_body(script: str) -> dict[str, Any]:
    """The managed run command the tool sent to deprovision before (runcommand.run)."""
    return {
        "location": "eastus",
        "properties": {
            "source": {"script": script},
            "parameters": [],
            "protectedParameters": [],
            "timeoutInSeconds": 1800,
            "asyncExecution": False,
            "treatFailureAsDeploymentFailure": False,
        },
    }


def test_old_action_deprovision_never_reports_and_blocks_every_later_run_command(
    clients: AzureClients, group: str, vm: str, admin: SandboxAdmin
) -> None:
    """The old tool's fallback on clouds without managed run commands: RunShellScript with
    a foreground `waagent -deprovision` (Azure/WALinuxAgent#2006, Azure/azure-cli#14642)."""
    poller = action(clients, group, vm, LINUX_DEPROVISION)
    admin.advance(3 * 3600)  # far past the 90 minutes: the agent never reports
    assert not poller.done() and poller.status() == "InProgress"
    disk = manifest(admin, clients, group, vm)
    assert disk["deprovisioned"] is True  # the deprovisioning itself happened
    assert agent_status(clients, group, vm) == (
        "Unknown",
        "ProvisioningState/Unavailable",
        "Not Ready",
    )
    assert power_state(clients, group, vm) == "running"
    with pytest.raises(HttpResponseError) as busy:
        action(clients, group, vm, "echo hello")
    assert (busy.value.status_code, error_code(busy.value)) == (409, "Conflict")
    assert busy.value.error is not None and busy.value.error.message == BUSY
    vms = clients.compute.virtual_machines
    vms.begin_restart(group, vm).result()  # a restart does not clear it (azure-cli#14642)
    with pytest.raises(HttpResponseError) as still:
        action(clients, group, vm, "echo hello")
    assert error_code(still.value) == "Conflict"
    # A managed run command is accepted, but no agent ever picks it up.
    commands = clients.compute.virtual_machine_run_commands
    later = commands.begin_create_or_update(group, vm, "later", old_generalize_body("echo hi"))
    admin.advance(3600)
    assert not later.done()
    found = commands.get_by_virtual_machine(group, vm, "later", expand="instanceView")
    assert (found.provisioning_state, found.instance_view.execution_state) == (
        "Creating",
        "Pending",
    )
    abandon(poller)  # they never end: no thread left polling them
    abandon(later)


def test_old_managed_deprovision_never_reports(
    clients: AzureClients, group: str, vm: str, admin: SandboxAdmin
) -> None:
    """The old tool's deprovisioning: a managed run command that waits for the script
    (Azure/WALinuxAgent#3547): it stays Creating / Running (Azure/azure-cli#28172)."""
    commands = clients.compute.virtual_machine_run_commands
    poller = commands.begin_create_or_update(
        group, vm, "generalize-1a2b3c4d", old_generalize_body(LINUX_DEPROVISION)
    )
    admin.advance(3 * 3600)  # far past its timeoutInSeconds and the tool's old wait
    assert not poller.done()
    found = commands.get_by_virtual_machine(group, vm, "generalize-1a2b3c4d", expand="instanceView")
    assert found.provisioning_state == "Creating"
    view = found.instance_view
    assert (view.execution_state, view.execution_message) == ("Running", "Execution in progress")
    assert agent_status(clients, group, vm)[2] == "Not Ready"
    assert manifest(admin, clients, group, vm)["deprovisioned"] is True
    # Re-sending it (as the old tool's retry did) is refused while it is in progress.
    with pytest.raises(HttpResponseError) as again:
        commands.begin_create_or_update(
            group, vm, "generalize-1a2b3c4d", old_generalize_body(LINUX_DEPROVISION)
        )
    assert (again.value.status_code, error_code(again.value)) == (
        409,
        "AnotherOperationInProgress",
    )
    abandon(poller)


def test_deprovisioning_in_a_later_systemd_unit_reports_first(
    clients: AzureClients, group: str, vm: str, admin: SandboxAdmin
) -> None:
    """The tool's launcher: the run command succeeds with the agent still Ready; a minute
    later the unit deprovisions (agent gone) and powers the VM off. A unit starting too
    soon is no better than the foreground: its command never reports."""
    commands = clients.compute.virtual_machine_run_commands
    # A day instead of a minute, so that the checks below run before the unit does.
    script = linux_launcher(LINUX_DEPROVISION).replace("--on-active=60", "--on-active=1d")
    body = old_generalize_body(script)
    commands.begin_create_or_update(group, vm, "launcher", body).result()
    found = commands.get_by_virtual_machine(group, vm, "launcher", expand="instanceView")
    assert (found.instance_view.execution_state, found.instance_view.exit_code) == ("Succeeded", 0)
    assert agent_status(clients, group, vm)[2] == "Ready"
    assert manifest(admin, clients, group, vm)["deprovisioned"] is False
    admin.advance(86400 + 60)
    assert power_state(clients, group, vm) == "stopped"
    assert manifest(admin, clients, group, vm)["deprovisioned"] is True
    assert clients.compute.virtual_machines.instance_view(group, vm).vm_agent is None

    create_vm(clients, group, "soon", linux_body(make_nic(clients, group, "nic2")))
    soon = "systemd-run --on-active=5 /bin/sh -c 'waagent -deprovision+user -force'"
    poller = commands.begin_create_or_update(group, "soon", "launcher", old_generalize_body(soon))
    admin.advance(600)
    assert not poller.done()
    assert agent_status(clients, group, "soon")[2] == "Not Ready"
    abandon(poller)


def test_one_action_at_a_time_and_its_ninety_minutes(
    clients: AzureClients,
    group: str,
    vm: str,
    admin: SandboxAdmin,
    config: Callable[..., None],
) -> None:
    config(
        script_failures=[
            {"pattern": "long-job", "exit_code": 0, "seconds": 3600},
            {"pattern": "endless-job", "exit_code": 0, "seconds": 7200},
        ]
    )
    first = action(clients, group, vm, "long-job")
    with pytest.raises(HttpResponseError) as busy:
        action(clients, group, vm, "echo second")
    assert (busy.value.status_code, error_code(busy.value)) == (409, "Conflict")
    admin.advance(3700)
    assert first.result().value[0].code == "ProvisioningState/succeeded"
    assert action(clients, group, vm, "echo second").result().value[0].code == (
        "ProvisioningState/succeeded"
    )
    endless = action(clients, group, vm, "endless-job")
    admin.advance(90 * 60 + 60)
    with pytest.raises(HttpResponseError) as timed_out:
        endless.result()
    assert error_code(timed_out.value) == "VMExtensionProvisioningTimeout"
    assert "'RunCommandLinux' has timed out" in str(timed_out.value.message)
    # The timed-out command no longer blocks the VM.
    assert action(clients, group, vm, "echo after").result().value[0].code == (
        "ProvisioningState/succeeded"
    )


def test_output_keeps_its_last_4096_bytes_unless_a_blob_gets_it(
    clients: AzureClients,
    group: str,
    vm: str,
    config: Callable[..., None],
    unique: Callable[[str], str],
) -> None:
    stdout = "".join(f"line {i:05d}\n" for i in range(2000))  # 22,000 bytes
    config(script_failures=[{"pattern": "chatty", "exit_code": 3, "stdout": stdout}])
    result = action(clients, group, vm, "chatty").result()
    message = result.value[0].message
    kept = message.split("[stdout]\n", 1)[1].split("\n[stderr]", 1)[0]
    assert kept == stdout[-4096:] and len(kept.encode()) == 4096

    account = make_storage(clients, group, unique("out"))
    body = old_generalize_body("chatty")
    body["properties"]["outputBlobUri"] = output_blob_url(clients, group, account, "chatty.out")
    commands = clients.compute.virtual_machine_run_commands
    commands.begin_create_or_update(group, vm, "chatty", body).result()
    found = commands.get_by_virtual_machine(group, vm, "chatty", expand="instanceView")
    assert found.instance_view.output == stdout[-4096:]
    blob = account_blob(clients, group, account, "logs", "chatty.out")
    assert blob.download_blob().readall().decode() == stdout


def test_a_managed_command_in_flight_when_sysprep_stops_the_vm_never_ends(
    clients: AzureClients, group: str, admin: SandboxAdmin, durations: Callable[..., None]
) -> None:
    """Sysprep /shutdown stops the VM while a diagnostic run command waits to report: the
    command stays in progress (what the old sysprep check waited on until its timeout)."""
    win = windows_body(make_nic(clients, group, "winnic"), "Sandbox-Secret-4711!")
    create_vm(clients, group, "win", win)
    # Long simulated durations (seconds of real time), moved past with `advance`: sysprep
    # finishes an hour after it started, a run command reports two hours after its PUT.
    durations(**{"vm.sysprep": 3600, "run_command.create": 7200})
    commands = clients.compute.virtual_machine_run_commands
    sysprep = old_generalize_body(
        r"& $env:SystemRoot\System32\Sysprep\Sysprep.exe /generalize /oobe /shutdown"
    )
    sysprep["properties"]["asyncExecution"] = True
    started = commands.begin_create_or_update(group, "win", "sysprep", sysprep)
    admin.advance(7300)
    started.result()
    check = commands.begin_create_or_update(
        group, "win", "diagnose", old_generalize_body("Get-Process sysprep")
    )
    admin.advance(10000)
    assert power_state(clients, group, "win") == "stopped"
    assert not check.done()
    found = commands.get_by_virtual_machine(group, "win", "diagnose", expand="instanceView")
    assert found.provisioning_state == "Creating"
    with pytest.raises(HttpResponseError) as stopped:
        commands.begin_create_or_update(group, "win", "again", old_generalize_body("dir"))
    assert error_code(stopped.value) == "OperationNotAllowed"
    abandon(check)
