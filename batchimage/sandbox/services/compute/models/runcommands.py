"""Run commands: the `runCommand` action (POST, LRO whose result is `value[]` shaped like
Azure's RunShellScript / RunPowerShellScript output) and managed run commands
(`virtualMachines/{vm}/runCommands/{name}`, instance view with execution state, exit
code and output, optional output/error blobs written into Azurite). Scripts are
evaluated by `scripts.evaluate`; their effects land on the VM (`agent.apply`) when the
command completes.

Azure's rules (sources in docs/azure-behaviours.md, "Run Command and the guest agent"):

- a run command needs a running VM (409 OperationNotAllowed) and reports only through
  the guest agent: when the agent or the VM goes away first (a script that deprovisions
  or powers off in its foreground, a VM that stopped) the command stays in progress for
  good - the action's operation InProgress and every later action refused with 409
  Conflict (Azure/azure-cli#14642), a managed one Creating with executionState Running
  (Azure/azure-cli#28172);
- one action run command at a time per VM (409 Conflict); managed ones run in parallel;
- an action script runs at most 90 minutes, then the operation fails with
  VMExtensionProvisioningTimeout; a managed one is killed at its `timeoutInSeconds`
  (Failed, exit code -1, as Azure/run-command-handler-linux reports it);
- output and error keep their last 4,096 bytes (`OUTPUT_TAIL`); a managed command's
  output and error blobs get all of it.

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
from batchimage.sandbox.context import Call, World
from batchimage.sandbox.services.compute import errors
from batchimage.sandbox.services.compute.guest import agent, scripts
from batchimage.sandbox.services.compute.models import blobs, runparams, vms

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
# Bytes of stdout / stderr a run command reports (maxTailLen in the handlers' cmds.go:
# Azure/run-command-extension-linux, Azure/run-command-handler-linux).
OUTPUT_TAIL = 4096
# The action run command's limit ("The maximum time a script can run is 90 minutes").
ACTION_LIMIT_S = 90 * 60.0
ACTION_HANDLER = {"shell": "RunCommandLinux", "powershell": "RunCommandWindows"}


def check_running(vm: dict[str, Any]) -> None:
    """409 OperationNotAllowed unless the VM runs and is provisioned."""
    if vm.get("_power") != "running" or vm["properties"].get("provisioningState") != "Succeeded":
        raise errors.vm_not_running()


def _kind(vm: dict[str, Any]) -> str:
    return "powershell" if vms.os_disk(vm).get("osType") == "Windows" else "shell"


def tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    """The last `limit` bytes of `text` (UTF-8), as the handlers report a stream."""
    raw = text.encode("utf-8")
    return raw[-limit:].decode("utf-8", "replace") if len(raw) > limit else text


# -- the runCommand action ---------------------------------------------------------------


def action_kind(vm: dict[str, Any], command: str) -> str:
    """The kind (shell, powershell) of the action run command `command` on the VM: a known
    command of the VM's OS, on a running VM with no action command in progress."""
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
    return kind


def check_action_free(world: World, vm: dict[str, Any]) -> None:
    """409 Conflict while an action run command still runs on the VM."""
    if vm.get("_run_command") and arm.busy(world, {"_op": vm["_run_command"]}):
        raise errors.run_command_busy()


def plan_action(
    world: World, vm: dict[str, Any], kind: str, script: str, parameters: Any
) -> tuple[float, dict[str, Any]]:
    """Evaluate an action script now (SAS URLs in it or its parameters are read while
    valid and never stored; its effects apply when it completes): (the operation's
    duration, the args of its timers)."""
    run = scripts.evaluate(
        world,
        kind,
        script,
        source="runCommand",
        parameters=parameters,
        action=True,
        setup_state=vms.disk_content(world, vm).get("setup_state"),
    )
    duration = scripts.duration(world, script)
    args = {
        "vm": vm["id"],
        "kind": kind,
        "run": dataclasses.asdict(run),
        "timed_out": duration > ACTION_LIMIT_S,
    }
    return min(duration, ACTION_LIMIT_S), args


def _action_output(kind: str, run: scripts.ScriptRun) -> list[dict[str, Any]]:
    if kind == "powershell":
        return [
            {
                "code": f"ComponentStatus/{stream}/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "message": tail(text),
            }
            for stream, text in (("StdOut", run.stdout), ("StdErr", run.stderr))
        ]
    streams = f"\n[stdout]\n{tail(run.stdout)}\n[stderr]\n{tail(run.stderr)}"
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
    if not agent.reports(vm):
        raise lro.Pending  # the agent or the VM went away: no result, the VM stays busy
    if args.get("timed_out"):
        handler = ACTION_HANDLER[args["kind"]]
        raise ApiError(
            400,
            "VMExtensionProvisioningTimeout",
            f"Provisioning of VM extension '{handler}' has timed out. Extension installation "
            "may be taking too long, or extension status could not be obtained.",
        )
    run = scripts.ScriptRun(**args["run"])
    agent.apply(world, vm, run)
    if run.hangs:
        raise lro.Pending
    vm.pop("_run_command", None)
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
    check_running(vm)
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
    """The managed run command runs when its PUT is due: instance view, output blobs, the
    VM's disk. Raises lro.Pending when its result can never be reported."""
    vm = vms.find_vm(world, record["id"].rsplit("/runCommands/", 1)[0])
    if vm is None:
        return
    if not agent.reports(vm):
        raise lro.Pending  # no agent picks it up: Creating, executionState Pending, for good
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
            _timed_out(view, record.get("_kind", "shell"), timeout)
            view.update(output=run.stdout, error=run.stderr)
        else:
            agent.apply(world, vm, run)
            if run.hangs:  # reported Running before the script, then nothing more
                view.update(executionState="Running", executionMessage="Execution in progress")
                view.update(exitCode=0, output="", error="", endTime=None)
                props["instanceView"] = view
                world.store.touch()
                if props.get("asyncExecution"):
                    return  # "provisioning will complete as soon as the script starts"
                raise lro.Pending
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
    view.update(output=tail(view["output"]), error=tail(view["error"]))
    props["instanceView"] = view
    world.store.touch()
    if view["executionState"] != "Succeeded" and props.get("treatFailureAsDeploymentFailure"):
        raise ApiError(
            400,
            "VMExtensionProvisioningError",
            f"VM has reported a failure when processing run command '{record['name']}'. "
            f"Execution state: {view['executionState']}. {view['executionMessage']}",
        )


def _timed_out(view: dict[str, Any], kind: str, timeout: int) -> None:
    """A script killed at `timeoutInSeconds`: the Linux handler runs it under a context
    deadline and reports the killed bash as a failure (internal/exec/exec.go,
    internal/commandProcessor/commandProcessor.go); the Windows handler's source is not
    public: the sandbox reports the published TimedOut state for it."""
    if kind == "shell":
        view.update(executionState="Failed", exitCode=-1)
        view["executionMessage"] = (
            "Execution failed: failed to execute command: command terminated with exit status=-1"
        )
    else:
        view.update(executionState="TimedOut", exitCode=-1)
        view["executionMessage"] = f"Execution timed out after {timeout} seconds."


def render_run_command(world: World, out: dict[str, Any]) -> dict[str, Any]:
    out["properties"].pop("instanceView", None)  # shown with $expand=instanceView only
    return out
