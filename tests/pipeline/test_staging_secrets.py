"""A staged file's read SAS travels only as a protected run command parameter: the file still
reaches the guest (Linux through the environment, Windows through a named parameter), and
the SAS (`sig=`) is in no run command resource read back through the real SDK (GET, list,
instance view), no state file, no CLI output or log, nothing the sandbox keeps. The sandbox
refuses a malformed parameter as ARM does and hands a misnamed or empty one to the guest as
the run command handler does (the script then fails)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from batchimage.azure.clients import AzureClients
from batchimage.azure.runcommand import powershell_prelude
from batchimage.azure.staging import FETCH_URL, fetch_script
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.spec import load_spec
from batchimage.steps.names import BuildNames
from tests.pipeline.harness import SPECS, Harness
from tests.pipeline.test_quickstart import cli
from tests.sandbox.compute_helpers import (
    container,
    create_vm,
    error_code,
    linux_body,
    make_group,
    make_nic,
    make_storage,
)
from tests.sandbox.test_compute_runcommands import manifest, sas

LEAKED_SAS = re.compile(r"sig=(?!REDACTED)")
REFERENCE = SPECS / "files" / "reference-data.txt"
REFERENCE_SHA = hashlib.sha256(REFERENCE.read_bytes()).hexdigest()


def raw_get(clients: AzureClients, group: str, vm: str, name: str, **kwargs: Any) -> str:
    """The run command's JSON exactly as the service answered the SDK's GET."""
    text: str = clients.compute.virtual_machine_run_commands.get_by_virtual_machine(
        group,
        vm,
        name,
        cls=lambda response, _model, _headers: response.http_response.text(),
        **kwargs,
    )
    return text


def assert_run_command_holds_no_sas(clients: AzureClients, group: str, vm: str, prefix: str) -> Any:
    """Read the run command named `prefix...` back every way a Reader can; none shows a SAS.
    Returns it with its instance view."""
    commands = clients.compute.virtual_machine_run_commands
    listed = [c for c in commands.list_by_virtual_machine(group, vm) if c.name.startswith(prefix)]
    assert len(listed) == 1, [c.name for c in commands.list_by_virtual_machine(group, vm)]
    name = listed[0].name
    found = commands.get_by_virtual_machine(group, vm, name, expand="instanceView")
    for text in (
        json.dumps(listed[0].as_dict()),
        json.dumps(found.as_dict()),
        raw_get(clients, group, vm, name),
        raw_get(clients, group, vm, name, expand="instanceView"),
    ):
        assert "sig=" not in text and "?sv=" not in text, text
        assert "protectedParameters" not in text and "runAsPassword" not in text
    assert found.protected_parameters is None
    assert FETCH_URL in found.source.script  # the script names the parameter, not its value
    assert (found.instance_view.execution_state, found.instance_view.exit_code) == (
        "Succeeded",
        0,
    ), found.instance_view.error
    return found


def sandbox_holds_sas_of(admin: SandboxAdmin, blob_path: str) -> bool:
    """Whether anything the sandbox keeps (its whole world) has a SAS URL of the blob at
    `blob_path` (a regex of `container/name`): other tests' SAS URLs do not count."""
    return bool(re.search(blob_path + r"\?[^\"]*sig=", json.dumps(admin.state())))


def fetched(disk: dict[str, Any], destination: str) -> dict[str, Any]:
    """The manifest entry of the file the guest downloaded to `destination`."""
    files = [m for m in disk["manifest"] if m.get("kind") == "file" and m["file"] == destination]
    assert files, disk["manifest"]
    return files[-1]


def test_linux_file_step_sas_only_in_protected_parameters(
    pipeline: Harness, clients: AzureClients, sandbox_folder: Path
) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    spec = load_spec(spec_path)
    names = BuildNames.of(spec)
    state = pipeline.tmp / "cli-state.json"
    args = ("apply", str(spec_path), "--yes", "--state", str(state), "-vv")
    first = cli(sandbox_folder, *args, "--target", "customize.1")
    assert first.returncode == 0, first.stdout + first.stderr

    # The build VM still runs: its run command is what a Reader on the VM can read.
    found = assert_run_command_holds_no_sas(clients, names.group, names.vm, "customize-1-")
    assert f'"${FETCH_URL}"' in found.source.script
    disk = manifest(pipeline.admin, clients, names.group, names.vm)
    entry = fetched(disk, "/opt/reference/reference-data.txt")
    assert entry["fetched"] is True and entry["sha256"] == REFERENCE_SHA
    script = next(m for m in disk["manifest"] if m.get("source", "").endswith(found.name))
    assert script["protected_parameters"] == [FETCH_URL] and "parameters" not in script
    staged = rf"staging/{spec.name}/[0-9a-f]{{16}}/reference-data\.txt"
    assert not sandbox_holds_sas_of(pipeline.admin, staged)

    second = cli(sandbox_folder, *args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "apply complete" in second.stdout
    raw_state = state.read_text()
    assert "sig=" not in raw_state and FETCH_URL not in raw_state
    for out in (first, second):
        assert not LEAKED_SAS.search(out.stdout + out.stderr)
    assert "azure.core" in first.stderr  # -vv did log the requests
    version = json.loads(raw_state)["steps"]["capture.version"]["outputs"]
    image = fetched(pipeline.image_content(version["version_id"]), entry["file"])
    assert image["sha256"] == REFERENCE_SHA


def test_windows_file_step_reads_the_sas_from_a_named_parameter(
    pipeline: Harness, clients: AzureClients
) -> None:
    destination = "C:\\tools\\reference-data.txt"

    def add_file(data: dict[str, Any]) -> None:
        step = {"name": "data", "file": {"source": "files/reference-data.txt"}}
        step["file"]["destination"] = destination
        data["image"]["customize"].insert(0, step)

    spec_path = pipeline.spec("windows-server.yaml", add_file)
    names = BuildNames.of(load_spec(spec_path))
    pipeline.apply(spec_path, target="customize.0")
    found = assert_run_command_holds_no_sas(clients, names.group, names.vm, "customize-0-")
    assert found.source.script.startswith(f"param([string]${FETCH_URL})")
    assert f"-Uri $env:{FETCH_URL}" in found.source.script
    entry = fetched(manifest(pipeline.admin, clients, names.group, names.vm), destination)
    assert entry["fetched"] is True and entry["sha256"] == REFERENCE_SHA
    staged = rf"staging/{load_spec(spec_path).name}/[0-9a-f]{{16}}/reference-data\.txt"
    assert not sandbox_holds_sas_of(pipeline.admin, staged)
    assert not LEAKED_SAS.search(" ".join(f"{e.message} {e.data}" for e in pipeline.events.events))
    assert "sig=" not in Path(load_spec(spec_path).state.path).read_text()


@pytest.fixture
def linux_vm(clients: AzureClients, unique: Callable[[str], str]) -> tuple[str, str]:
    group = make_group(clients, unique("rgsec"))
    create_vm(clients, group, "build", linux_body(make_nic(clients, group, "nic")))
    return group, "build"


def staged_url(clients: AzureClients, group: str, unique: Callable[[str], str]) -> str:
    """A read SAS URL of the reference file staged in a new account's `staging` container."""
    account = make_storage(clients, group, unique("stg"))
    staging = container(clients, group, account, "staging")
    staging.get_blob_client("reference-data.txt").upload_blob(REFERENCE.read_bytes())
    return sas(clients, group, account, "reference-data.txt")


def put(clients: AzureClients, group: str, vm: str, name: str, **props: Any) -> Any:
    body = {"location": "eastus", "properties": {"timeoutInSeconds": 600, **props}}
    commands = clients.compute.virtual_machine_run_commands
    commands.begin_create_or_update(group, vm, name, body).result()
    return commands.get_by_virtual_machine(group, vm, name, expand="instanceView")


def test_malformed_parameters_are_refused_or_reach_the_guest_as_azure_hands_them(
    clients: AzureClients,
    admin: SandboxAdmin,
    linux_vm: tuple[str, str],
    unique: Callable[[str], str],
) -> None:
    group, vm = linux_vm
    url = staged_url(clients, group, unique)
    script = fetch_script("linux", "/opt/data/reference-data.txt", REFERENCE_SHA)
    source = {"script": script}
    commands = clients.compute.virtual_machine_run_commands

    # ARM cannot deserialize these: 400 InvalidRequestContent, nothing is created.
    for key, bad, path in (
        ("protectedParameters", [{"name": FETCH_URL, "value": {"url": url}}], "[0].value"),
        ("protectedParameters", {"name": FETCH_URL, "value": url}, ""),
        ("parameters", [[FETCH_URL, "x"]], "[0]"),
    ):
        with pytest.raises(HttpResponseError) as refused:
            put(clients, group, vm, "bad", source=source, **{key: bad})
        assert refused.value.status_code == 400
        assert error_code(refused.value) == "InvalidRequestContent"
        assert f"Path 'properties.{key}{path}'" in str(refused.value.message)
        assert "sig=" not in str(refused.value.message)
    assert "bad" not in {c.name for c in commands.list_by_virtual_machine(group, vm)}
    with pytest.raises(HttpResponseError) as action:
        params = {"commandId": "RunShellScript", "script": ["true"], "parameters": ["x=1"]}
        clients.compute.virtual_machines.begin_run_command(group, vm, params).result()
    assert error_code(action.value) == "InvalidRequestContent"

    # Well formed but wrong: the Linux handler sets no variable for a misnamed or empty
    # parameter, so the script's `set -u` stops at the download and nothing is fetched.
    for name, value in ((FETCH_URL.lower(), url), (FETCH_URL, "")):
        got = put(
            clients,
            group,
            vm,
            "misnamed",
            source=source,
            protectedParameters=[{"name": name, "value": value}],
        )
        view = got.instance_view
        assert (view.execution_state, view.exit_code) == ("Failed", 1)
        assert view.error.endswith(
            f"/misnamed/0/script.sh: line 3: {FETCH_URL}: unbound variable\n"
        )
    disk = manifest(admin, clients, group, vm)
    assert not [m for m in disk["manifest"] if m.get("kind") == "file"]

    # Public parameters are returned as sent; the protected one only reaches the guest.
    ok = put(
        clients,
        group,
        vm,
        "fetch",
        source=source,
        parameters=[{"name": "CHANNEL", "value": "stable"}],
        protectedParameters=[{"name": FETCH_URL, "value": url}],
    )
    assert ok.instance_view.execution_state == "Succeeded", ok.instance_view.error
    assert [(p.name, p.value) for p in ok.parameters] == [("CHANNEL", "stable")]
    assert "sig=" not in json.dumps(ok.as_dict()) and ok.protected_parameters is None
    assert fetched(manifest(admin, clients, group, vm), "/opt/data/reference-data.txt")["fetched"]
    assert not sandbox_holds_sas_of(admin, re.escape(url.split("?", 1)[0]))


def test_action_run_command_parameters_reach_the_script(
    clients: AzureClients,
    admin: SandboxAdmin,
    linux_vm: tuple[str, str],
    unique: Callable[[str], str],
) -> None:
    """The fallback for clouds without managed run commands: `RunShellScript` exports each
    named parameter above the script (and passes the values as $1...)."""
    group, vm = linux_vm
    url = staged_url(clients, group, unique)
    script = fetch_script("linux", "/opt/action/reference-data.txt", REFERENCE_SHA)
    body = {
        "commandId": "RunShellScript",
        "script": script.splitlines(),
        "parameters": [{"name": FETCH_URL, "value": url}],
    }
    result = clients.compute.virtual_machines.begin_run_command(group, vm, body).result()
    assert result.value[0].code == "ProvisioningState/succeeded", result.value[0].message
    disk = manifest(admin, clients, group, vm)
    entry = fetched(disk, "/opt/action/reference-data.txt")
    assert entry["sha256"] == REFERENCE_SHA
    recorded = disk["manifest"][-2]["parameters"]  # the script's entry, then the file's
    assert recorded == [{"name": FETCH_URL, "value": url.split("?")[0] + "?<query removed>"}]
    positional = dict(body, script=['curl -fsS -o /opt/action/positional.txt "$1"'])
    clients.compute.virtual_machines.begin_run_command(group, vm, positional).result()
    assert fetched(manifest(admin, clients, group, vm), "/opt/action/positional.txt")["fetched"]


def test_windows_script_without_its_parameter_fails_like_powershell(
    clients: AzureClients, unique: Callable[[str], str], admin: SandboxAdmin
) -> None:
    from tests.sandbox.compute_helpers import windows_body

    group = make_group(clients, unique("rgwin"))
    create_vm(clients, group, "win", windows_body(make_nic(clients, group, "nic"), "Pa55w.rd-1234"))
    url = staged_url(clients, group, unique)
    script = powershell_prelude([FETCH_URL]) + fetch_script(
        "windows", "C:\\data\\reference-data.txt", REFERENCE_SHA
    )
    missing = put(clients, group, "win", "nourl", source={"script": script})
    assert (missing.instance_view.execution_state, missing.instance_view.exit_code) == ("Failed", 1)
    assert "Cannot validate argument on parameter 'Uri'" in missing.instance_view.error
    named = [{"name": FETCH_URL.lower(), "value": url}]  # PowerShell names: any case
    ok = put(clients, group, "win", "withurl", source={"script": script}, protectedParameters=named)
    assert ok.instance_view.execution_state == "Succeeded", ok.instance_view.error
    entry = fetched(manifest(admin, clients, group, "win"), "C:\\data\\reference-data.txt")
    assert entry["sha256"] == REFERENCE_SHA
