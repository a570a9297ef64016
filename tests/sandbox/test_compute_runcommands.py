"""Run commands (action and managed) and VM extensions through the real
ComputeManagementClient; the OS disk manifest they leave, read from the sandbox state
(white-box), and downloads really read from Azurite through SAS URLs."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobSasPermissions, generate_blob_sas

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from tests.sandbox import batch_support
from tests.sandbox.compute_helpers import (
    account_blob,
    blob_sas_url,
    container,
    create_vm,
    error_code,
    linux_body,
    make_group,
    make_nic,
    make_storage,
    output_blob_url,
    power_state,
    windows_body,
)

durations = batch_support.durations


@pytest.fixture
def group(clients: AzureClients, unique: Callable[[str], str]) -> str:
    return make_group(clients, unique("rgrc"))


@pytest.fixture
def vm(clients: AzureClients, group: str) -> str:
    create_vm(clients, group, "build", linux_body(make_nic(clients, group, "nic")))
    return "build"


@pytest.fixture
def config(admin: SandboxAdmin) -> Iterator[Callable[..., None]]:
    def apply(**compute: Any) -> None:
        admin.configure(compute=compute)

    yield apply
    admin.configure(compute={"script_failures": [], "vm_extensions": []})


def manifest(admin: SandboxAdmin, clients: AzureClients, group: str, name: str) -> dict[str, Any]:
    """The OS disk content of VM `name` (white-box: the sandbox's own table)."""
    vm = clients.compute.virtual_machines.get(group, name)
    tables = admin.state()["tables"]
    disk_id = vm.storage_profile.os_disk.managed_disk.id.lower()
    content: dict[str, Any] = tables["compute_content"][tables["resources"][disk_id]["_content"]]
    return content


def run(clients: AzureClients, group: str, vm: str, *lines: str, command: str = "RunShellScript"):
    params = {"commandId": command, "script": list(lines)}
    return clients.compute.virtual_machines.begin_run_command(group, vm, params).result()


def sas(clients: AzureClients, group: str, account: Any, name: str, hours: float = 1) -> str:
    read = BlobSasPermissions(read=True)
    return blob_sas_url(clients, group, account, f"staging/{name}", read, hours)


def test_run_shell_script_records_the_script(
    clients: AzureClients, group: str, vm: str, admin: SandboxAdmin
) -> None:
    result = run(clients, group, vm, "apt-get update", "apt-get install -y nginx")
    assert [s.code for s in result.value] == ["ProvisioningState/succeeded"]
    assert result.value[0].message == "Enable succeeded: \n[stdout]\n\n[stderr]\n"
    disk = manifest(admin, clients, group, vm)
    script = "apt-get update\napt-get install -y nginx"
    assert disk["manifest"][-1]["script"] == script
    assert disk["manifest"][-1]["sha256"] == hashlib.sha256(script.encode()).hexdigest()
    assert disk["manifest"][-1]["exit_code"] == 0 and disk["deprovisioned"] is False
    raw = clients.compute.virtual_machines.get(group, vm, expand="instanceView").as_dict()
    assert "manifest" not in str(raw)


def test_failure_rule_and_not_running(
    clients: AzureClients, group: str, vm: str, config: Callable[..., None]
) -> None:
    config(
        script_failures=[
            {"pattern": r"install -y broken", "exit_code": 100, "stderr": "E: Unable to locate"}
        ]
    )
    result = run(clients, group, vm, "apt-get install -y broken")
    assert result.value[0].code == "ProvisioningState/failed"
    assert "exit status=100" in result.value[0].message
    assert result.value[0].message.endswith("[stderr]\nE: Unable to locate")
    clients.compute.virtual_machines.begin_deallocate(group, vm).result()
    with pytest.raises(HttpResponseError) as stopped:
        run(clients, group, vm, "true")
    assert stopped.value.status_code == 409 and error_code(stopped.value) == "OperationNotAllowed"
    assert "requires the VM to be running" in str(stopped.value.message)


def test_downloads_read_the_blob_through_its_sas(
    clients: AzureClients,
    group: str,
    vm: str,
    admin: SandboxAdmin,
    unique: Callable[[str], str],
) -> None:
    account = make_storage(clients, group, unique("stage"))
    payload = b"#!/bin/sh\necho tool\n" * 100
    container(clients, group, account, "staging").upload_blob("tool.sh", payload)
    url = sas(clients, group, account, "tool.sh")
    result = run(
        clients, group, vm, f"curl -fsSL -o /opt/app/tool.sh '{url}'", "sh /opt/app/tool.sh"
    )
    assert result.value[0].code == "ProvisioningState/succeeded"
    entry = manifest(admin, clients, group, vm)["manifest"][-1]
    assert entry["kind"] == "file" and entry["file"] == "/opt/app/tool.sh"
    assert entry["sha256"] == hashlib.sha256(payload).hexdigest() and entry["size"] == len(payload)
    assert entry["url"] == url.split("?", 1)[0]
    assert "sig=" not in str(admin.state()["tables"]["compute_content"])

    missing = sas(clients, group, account, "missing.sh")
    result = run(clients, group, vm, f"curl -fsSL -o /tmp/m.sh '{missing}'")
    assert "exit status=22" in result.value[0].message
    assert "curl: (22) The requested URL returned error: 404" in result.value[0].message
    expired = sas(clients, group, account, "tool.sh", hours=-1)
    result = run(clients, group, vm, f"wget -q -O /tmp/t.sh '{expired}'")
    assert "exit status=8" in result.value[0].message and "ERROR 403" in result.value[0].message
    create_vm(clients, group, "win", windows_body(make_nic(clients, group, "winnic"), "Pa55-word!"))
    result = run(
        clients,
        group,
        "win",
        f"Invoke-WebRequest -Uri '{missing}' -OutFile C:\\tools\\m.ps1",
        command="RunPowerShellScript",
    )
    assert result.value[1].message == (
        "Invoke-WebRequest : The remote server returned an error: (404) Not Found.\n"
    )
    result = run(
        clients,
        group,
        "win",
        f"Invoke-WebRequest -Uri '{url}' -OutFile C:\\tools\\tool.sh",
        command="RunPowerShellScript",
    )
    entry = manifest(admin, clients, group, "win")["manifest"][-1]
    assert (entry["file"], entry["sha256"]) == (
        "C:\\tools\\tool.sh",
        hashlib.sha256(payload).hexdigest(),
    )


def test_windows_sysprep_seals_then_stops_the_vm(
    clients: AzureClients, group: str, admin: SandboxAdmin, durations: Callable[..., None]
) -> None:
    """Sysprep runs on after its run command reported: the VM stops when it is done."""
    durations(**{"vm.sysprep": 3600})  # an hour: checked before it ends
    win = windows_body(make_nic(clients, group, "winnic"), "Sandbox-Secret-4711!")
    create_vm(clients, group, "win", win)
    with pytest.raises(HttpResponseError) as wrong:
        run(clients, group, "win", "echo hi")
    assert wrong.value.status_code == 400
    result = run(
        clients,
        group,
        "win",
        r"& $env:SystemRoot\System32\Sysprep\Sysprep.exe /oobe /generalize /quiet /shutdown",
        command="RunPowerShellScript",
    )
    assert [s.code for s in result.value] == [
        "ComponentStatus/StdOut/succeeded",
        "ComponentStatus/StdErr/succeeded",
    ]
    assert manifest(admin, clients, group, "win")["deprovisioned"] is False  # still running
    assert power_state(clients, group, "win") == "running"
    admin.advance(3700)  # past vm.sysprep
    assert manifest(admin, clients, group, "win")["deprovisioned"] is True
    assert power_state(clients, group, "win") == "stopped"


def test_managed_run_commands(
    clients: AzureClients,
    group: str,
    vm: str,
    admin: SandboxAdmin,
    config: Callable[..., None],
    unique: Callable[[str], str],
) -> None:
    commands = clients.compute.virtual_machine_run_commands
    account = make_storage(clients, group, unique("out"))
    key = clients.storage.storage_accounts.list_keys(group, account.name).keys_property[0].value
    error_uri = output_blob_url(clients, group, account, "step1.err")
    config(script_failures=[{"pattern": "make fail", "exit_code": 2, "stderr": "make: *** [all]"}])
    body = {
        "location": "eastus",
        "properties": {
            "source": {"script": "make fail"},
            "timeoutInSeconds": 600,
            "errorBlobUri": error_uri,
            "protectedParameters": [{"name": "token", "value": "s3cr3t-value"}],
        },
    }
    created = commands.begin_create_or_update(group, vm, "step1", body).result()
    assert created.provisioning_state == "Succeeded" and created.instance_view is None
    assert created.error_blob_uri == error_uri.split("?", 1)[0]
    got = commands.get_by_virtual_machine(group, vm, "step1", expand="instanceView")
    view = got.instance_view
    assert (view.execution_state, view.exit_code, view.error) == ("Failed", 2, "make: *** [all]")
    written = account_blob(clients, group, account, "logs", "step1.err").download_blob().readall()
    assert written == b"make: *** [all]"
    assert "s3cr3t-value" not in str(admin.state())
    body["properties"]["treatFailureAsDeploymentFailure"] = True
    with pytest.raises(HttpResponseError) as failed:
        commands.begin_create_or_update(group, vm, "step2", body).result()
    assert error_code(failed.value) == "VMExtensionProvisioningError"
    good = {"location": "eastus", "properties": {"source": {"script": "echo ok"}}}
    commands.begin_create_or_update(group, vm, "step3", good).result()
    ok = commands.get_by_virtual_machine(group, vm, "step3", expand="instanceView").instance_view
    assert (ok.execution_state, ok.exit_code) == ("Succeeded", 0)
    assert {c.name for c in commands.list_by_virtual_machine(group, vm)} >= {"step1", "step3"}
    scripts = [m.get("script") for m in manifest(admin, clients, group, vm)["manifest"]]
    assert scripts[-2:] == ["make fail", "echo ok"]
    timed = {
        "location": "eastus",
        "properties": {"source": {"script": "sleep forever"}, "timeoutInSeconds": 60},
    }
    config(script_failures=[{"pattern": "sleep forever", "exit_code": 0, "seconds": 120}])
    commands.begin_create_or_update(group, vm, "step4", timed).result()
    late = commands.get_by_virtual_machine(group, vm, "step4", expand="instanceView")
    # Killed at timeoutInSeconds, reported as the Linux handler does (exec.go).
    assert (late.instance_view.execution_state, late.instance_view.exit_code) == ("Failed", -1)
    assert late.instance_view.execution_message == (
        "Execution failed: failed to execute command: command terminated with exit status=-1"
    )
    script_blob = container(clients, group, account, "scripts").get_blob_client("setup.sh")
    script_blob.upload_blob(b"mkdir -p /opt/from-uri\n")
    script_sas = generate_blob_sas(
        account.name,
        "scripts",
        "setup.sh",
        account_key=key,
        permission=BlobSasPermissions(read=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    by_uri = {
        "location": "eastus",
        "properties": {"source": {"scriptUri": f"{script_blob.url}?{script_sas}"}},
    }
    commands.begin_create_or_update(group, vm, "step5", by_uri).result()
    fetched = commands.get_by_virtual_machine(group, vm, "step5", expand="instanceView")
    assert fetched.instance_view.execution_state == "Succeeded"
    assert (
        manifest(admin, clients, group, vm)["manifest"][-1]["script"] == "mkdir -p /opt/from-uri\n"
    )
    commands.begin_delete(group, vm, "step3").result()
    assert "step3" not in {c.name for c in commands.list_by_virtual_machine(group, vm)}


def test_extensions(clients: AzureClients, group: str, config: Callable[..., None]) -> None:
    config(
        vm_extensions=[
            {
                "name": "AzureMonitorLinuxAgent",
                "publisher": "Microsoft.Azure.Monitor",
                "type": "AzureMonitorLinuxAgent",
                "typeHandlerVersion": "1.0",
                "os_type": "Linux",
            }
        ]
    )
    create_vm(clients, group, "vm", linux_body(make_nic(clients, group, "nic")))
    ext = clients.compute.virtual_machine_extensions
    assert [e.name for e in ext.list(group, "vm").value] == ["AzureMonitorLinuxAgent"]
    body = {
        "location": "eastus",
        "properties": {
            "publisher": "Microsoft.Azure.Extensions",
            "type": "CustomScript",
            "typeHandlerVersion": "2.1",
            "protectedSettings": {"commandToExecute": "echo secret"},
        },
    }
    custom = ext.begin_create_or_update(group, "vm", "custom", body).result()
    assert custom.provisioning_state == "Succeeded" and custom.protected_settings is None
    vm = clients.compute.virtual_machines.get(group, "vm", expand="instanceView")
    assert {e.name for e in vm.instance_view.extensions} == {"AzureMonitorLinuxAgent", "custom"}
    ext.begin_delete(group, "vm", "custom").result()
    clients.compute.virtual_machines.begin_power_off(group, "vm").result()
    with pytest.raises(HttpResponseError) as stopped:
        ext.begin_delete(group, "vm", "AzureMonitorLinuxAgent").result()
    assert error_code(stopped.value) == "OperationNotAllowed"
    assert "when the VM is not running" in str(stopped.value.message)
    clients.compute.virtual_machines.begin_start(group, "vm").result()
    ext.begin_delete(group, "vm", "AzureMonitorLinuxAgent").result()
    assert ext.list(group, "vm").value == []
