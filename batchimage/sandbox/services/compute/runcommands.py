"""Run commands: the `runCommand` action (POST, LRO whose result is `value[]` shaped like
Azure's RunShellScript / RunPowerShellScript output) and managed run commands
(`virtualMachines/{vm}/runCommands/{name}`, instance view with execution state, exit
code and output, optional output/error blobs written into Azurite). Scripts are
evaluated by `scripts.evaluate`; their effects land on the VM's OS disk when the
command completes.

Parameters (see `runparams`): `parameters` are part of the resource, as Azure returns
them; `protectedParameters` and `runAsPassword` are never returned (not on GET, list or
with the instance view): the protected values are held out of the rendered resource only
until the command has run, then dropped."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from batchimage.sandbox import arm, lro
from batchimage.sandbox.apierrors import ApiError, bad_request
from batchimage.sandbox.clock import action
from batchimage.sandbox.context import Call, Reply, World
from batchimage.sandbox.services.compute import blobs, errors, runparams, scripts, vms

COMMANDS = {
    "RunShellScript": ("Linux", "shell"),
    "ifconfig": ("Linux", "shell"),
    "RunPowerShellScript": ("Windows", "powershell"),
    "ipconfig": ("Windows", "powershell"),
}
RUN_COMMAND_TYPE = f"{vms.TYPE}/runCommands"
# Where the Linux handler saves a managed run command's script (the path bash names in
# its errors): Azure/run-command-handler-linux, internal/exec/exec.go.
HANDLER_DOWNLOADS = "/var/lib/waagent/run-command-handler/download"


def _running_vm(call: Call, vm: dict[str, Any]) -> None:
    if vm.get("_power") != "running" or vm["properties"].get("provisioningState") != "Succeeded":
        raise errors.vm_not_running()


def _kind(vm: dict[str, Any]) -> str:
    return "powershell" if vms.os_disk(vm).get("osType") == "Windows" else "shell"


def apply(world: World, vm: dict[str, Any], run: scripts.ScriptRun) -> None:
    """Put a finished script's traces on the VM's OS disk (and stop the VM if it shut down)."""
    disk = vms.disk_content(world, vm)
    disk["manifest"].extend(run.entries)
    if run.deprovisioned:
        disk["deprovisioned"] = True
    if run.setup_state is not None:
        disk["setup_state"] = run.setup_state
    if run.shutdown:
        vm["_power"] = "stopped"
    vms.save_disk(world, vm)


# -- the runCommand action ---------------------------------------------------------------


def run_command(call: Call) -> Reply:
    from batchimage.sandbox.services.compute.urls import VIRTUAL_MACHINES

    vm = VIRTUAL_MACHINES.find(call)
    body = call.json_object()
    command = str(body.get("commandId") or "")
    known = {k.lower(): (k, v) for k, v in COMMANDS.items()}
    if command.lower() not in known:
        raise errors.invalid_parameter(
            f"The command '{command}' is not a supported run command. Supported: "
            f"{', '.join(COMMANDS)}.",
            "commandId",
        )
    name, (os_type, kind) = known[command.lower()]
    if vms.os_disk(vm).get("osType") != os_type:
        raise bad_request(
            "BadRequest",
            f"The run command '{name}' is not supported for the OS type "
            f"'{vms.os_disk(vm).get('osType')}' of VM '{vm['name']}'.",
        )
    _running_vm(call, vm)
    if vm.get("_run_command") and arm.busy(call.world, {"_op": vm["_run_command"]}):
        raise errors.run_command_busy()
    parameters = runparams.parse(body, "parameters", prefix="")
    lines = body.get("script") or []
    script = "\n".join(str(line) for line in lines) if lines else command
    # Evaluated now, applied when the command completes: SAS URLs in the script or its
    # parameters are read while valid and never stored.
    run = scripts.evaluate(
        call.world,
        kind,
        script,
        source="runCommand",
        parameters=parameters,
        action=True,
        setup_state=vms.disk_content(call.world, vm).get("setup_state"),
    )
    op = lro.start(
        call,
        namespace=vms.NS,
        duration=scripts.duration(call.world, script),
        done="compute.run_command_done",
        failed="compute.run_command_failed",
        args={"vm": vm["id"], "kind": kind, "run": dataclasses.asdict(run)},
        location=vm["location"],
    )
    vm["_run_command"] = op["id"]
    call.store.touch()
    return lro.accepted(call.world, op, async_op=True)


def _action_output(kind: str, run: scripts.ScriptRun) -> list[dict[str, Any]]:
    if kind == "powershell":
        return [
            {
                "code": f"ComponentStatus/{stream}/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "message": text,
            }
            for stream, text in (("StdOut", run.stdout), ("StdErr", run.stderr))
        ]
    streams = f"\n[stdout]\n{run.stdout}\n[stderr]\n{run.stderr}"
    if run.ok:
        return [
            {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "message": "Enable succeeded: " + streams,
            }
        ]
    return [
        {
            "code": "ProvisioningState/failed",
            "level": "Error",
            "displayStatus": "Provisioning failed",
            "message": "Enable failed: failed to execute command: command terminated with exit "
            f"status={run.exit_code}" + streams,
        }
    ]


@action("compute.run_command_done")
def _run_command_done(world: World, args: dict[str, Any]) -> None:
    vm = vms.find_vm(world, args["vm"])
    op = lro.operations(world)[args["operation"]]
    if vm is None:
        op["result"] = {"value": []}
        return
    vm.pop("_run_command", None)
    run = scripts.ScriptRun(**args["run"])
    apply(world, vm, run)
    op["result"] = {"value": _action_output(args["kind"], run)}
    world.store.touch()


@action("compute.run_command_failed")
def _run_command_failed(world: World, args: dict[str, Any]) -> None:
    vm = vms.find_vm(world, args["vm"])
    if vm is not None:
        vm.pop("_run_command", None)
        world.store.touch()


# -- managed run commands ------------------------------------------------------------------


def build_run_command(
    call: Call, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    """A managed run command PUT: the VM must be running; parameters well formed (400
    InvalidRequestContent); the protected ones kept aside until it runs, never rendered."""
    from batchimage.sandbox.services.compute.urls import RUN_COMMANDS

    vm = RUN_COMMANDS.parent(call)
    props = copy.deepcopy(body.get("properties") or {})
    parameters = runparams.parse(props, "parameters")
    protected = runparams.parse(props, "protectedParameters")
    _running_vm(call, vm)
    source = props.get("source") or {}
    if not (source.get("script") or source.get("scriptUri") or source.get("commandId")):
        raise errors.missing("source")
    for secret in ("protectedParameters", "runAsPassword"):
        props.pop(secret, None)
    if "parameters" in props:
        props["parameters"] = parameters
    for uri_key in ("outputBlobUri", "errorBlobUri"):
        if props.get(uri_key):
            props[f"_{uri_key}"] = props[uri_key]
            props[uri_key] = str(props[uri_key]).split("?", 1)[0]
    props["instanceView"] = {"executionState": "Pending"}
    props.setdefault("asyncExecution", False)
    props.setdefault("timeoutInSeconds", 0)
    props.setdefault("treatFailureAsDeploymentFailure", False)
    hidden = {k: props.pop(k) for k in list(props) if k.startswith("_")}
    record = {"properties": props, "_blobs": hidden, "_kind": _kind(vm)}
    if protected:
        record["_protected"] = protected
    return record


def _script_of(world: World, record: dict[str, Any]) -> tuple[str, str | None]:
    """The script text of a managed run command (fetched for `scriptUri`), or an error."""
    source = record["properties"].get("source") or {}
    if source.get("script"):
        return str(source["script"]), None
    if source.get("scriptUri"):
        try:
            return blobs.fetch(world, str(source["scriptUri"])).decode("utf-8", "replace"), None
        except blobs.BlobFetchError as exc:
            return "", f"Failed to download the script from scriptUri: {exc.status} {exc.message}"
    return str(source.get("commandId")), None


def execute(world: World, record: dict[str, Any]) -> None:
    """The managed run command ran: instance view, output blobs, the VM's disk."""
    vm = vms.find_vm(world, record["id"].rsplit("/runCommands/", 1)[0])
    if vm is None:
        return
    started = lro.iso(world.clock.now())
    protected = record.pop("_protected", None)  # handed to the guest once, then forgotten
    script, problem = _script_of(world, record)
    props = record["properties"]
    view: dict[str, Any] = {"startTime": started, "endTime": started, "statuses": []}
    if problem:
        view.update(executionState="Failed", exitCode=-1, output="", error=problem)
        view["executionMessage"] = problem
    else:
        run = scripts.evaluate(
            world,
            record.get("_kind", "shell"),
            script,
            source=f"runCommand:{record['name']}",
            parameters=props.get("parameters"),
            protected=protected,
            program=f"{HANDLER_DOWNLOADS}/{record['name']}/0/script.sh",
            setup_state=vms.disk_content(world, vm).get("setup_state"),
        )
        timeout = int(props.get("timeoutInSeconds") or 0)
        if timeout and scripts.duration(world, script) > timeout:
            view.update(executionState="TimedOut", exitCode=-1, output=run.stdout, error="")
            view["executionMessage"] = f"Execution timed out after {timeout} seconds."
        else:
            apply(world, vm, run)
            state = "Succeeded" if run.ok else "Failed"
            view.update(
                executionState=state, exitCode=run.exit_code, output=run.stdout, error=run.stderr
            )
            view["executionMessage"] = (
                "Execution completed" if run.ok else f"Script returned exit code {run.exit_code}"
            )
    hidden = record.get("_blobs") or {}
    for key, text in (("_outputBlobUri", view["output"]), ("_errorBlobUri", view["error"])):
        if hidden.get(key):
            failed = blobs.put_text(world, hidden[key], text)
            if failed:
                view["executionMessage"] = failed
    props["instanceView"] = view
    world.store.touch()
    if view["executionState"] != "Succeeded" and props.get("treatFailureAsDeploymentFailure"):
        raise ApiError(
            400,
            "VMExtensionProvisioningError",
            f"VM has reported a failure when processing run command '{record['name']}'. "
            f"Execution state: {view['executionState']}. {view['executionMessage']}",
        )


def after_provisioned(world: World, record: dict[str, Any]) -> None:
    execute(world, record)


def render_run_command(world: World, out: dict[str, Any]) -> dict[str, Any]:
    out["properties"].pop("instanceView", None)  # shown with $expand=instanceView only
    return out


def get_run_command(call: Call) -> Reply:
    from batchimage.sandbox.services.compute.urls import RUN_COMMANDS

    record = RUN_COMMANDS.find(call)
    out = arm.render(call.world, record)
    if "instanceview" in (call.arg("$expand") or "").lower():
        out["properties"]["instanceView"] = copy.deepcopy(record["properties"]["instanceView"])
    return Reply(200, out)
