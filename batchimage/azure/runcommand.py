"""Run scripts in the build VM through Run Command: managed run commands (a child resource
of the VM, observable by name, with exit code, stdout and stderr) where the cloud has them,
else the older action run command (RunShellScript / RunPowerShellScript).

    result = run(ctx, group, vm, "customize-0-3f2a9c1d", script, os_type="linux",
                 env={"A": "1"}, secret_env={"TOKEN": "..."}, location=..., tags=...)
    result.exit_code, result.stdout, result.stderr, result.tail()
    found = observe(ctx, group, vm, "customize-0-3f2a9c1d")     # None when never run

Secret values go as protected parameters: never echoed by Azure, never logged by us.

A run command reports only through the guest agent: when the VM stops or its agent stops
(`waagent -deprovision` stops it first) before the command reported, the command never
ends (Azure/WALinuxAgent#3547, Azure/azure-cli#14642). While waiting, `run` watches the
VM and raises `GuestGone` instead of waiting out the timeout. Azure keeps only the last
4,096 bytes of each output stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError as SdkAzureError
from azure.mgmt.compute.models import (
    RunCommandInput,
    RunCommandInputParameter,
    VirtualMachineRunCommand,
    VirtualMachineRunCommandProperties,
    VirtualMachineRunCommandScriptSource,
)

from batchimage.azure.arm import begin_and_wait, poll_interval, text
from batchimage.azure.errors import azure_call, is_not_found, translate
from batchimage.azure.guest import agent_ready, power_state, read_vm
from batchimage.azure.pollers import abandon, fixed_rate
from batchimage.core.clip import TAIL_LINES, tail_lines
from batchimage.core.errors import AzureError, BatchImageError
from batchimage.core.redact import redact, register_secret

if TYPE_CHECKING:
    from batchimage.azure.calls import Calls
    from batchimage.core.waiting import Poller

# Codes a cloud without managed run commands answers with.
UNSUPPORTED = {"InvalidResourceType", "NoRegisteredProviderFound", "NotSupported"}
# Bytes of each stream a run command's result keeps (Azure's documented output limit).
OUTPUT_LIMIT = 4096
# A guest agent Not Ready on this many VM reads in a row, while a command runs, is gone.
AGENT_GONE_READS = 5


class GuestGone(BatchImageError):
    """The VM stopped, or its guest agent stopped reporting, while run command `name` ran:
    that command will never report (`reason`: "stopped" or "agent")."""

    def __init__(self, vm: str, name: str, reason: str, power: str) -> None:
        self.vm, self.name, self.reason, self.power = vm, name, reason, power
        if reason == "stopped":
            what = f"VM {vm} is {power}"
        else:
            what = f"the guest agent of VM {vm} stopped reporting (Not Ready)"
        super().__init__(
            f"{what} while run command {name} ran: a run command reports only through the "
            "guest agent, so this one will never end"
        )


@dataclass(frozen=True)
class RunCommandResult:
    """How a script ended in the guest."""

    name: str
    id: str | None
    state: str  # Succeeded | Failed | TimedOut | Canceled | Running | Pending | Unknown
    exit_code: int | None
    stdout: str
    stderr: str
    tags: dict[str, str] = field(default_factory=dict)
    provisioning: str = ""  # the resource's provisioningState

    @property
    def stuck(self) -> bool:
        """Never to run: its create failed before the guest took it (execution not ended)."""
        return not self.finished and self.provisioning.lower() == "failed"

    @property
    def succeeded(self) -> bool:
        """Finished with exit code 0."""
        return self.state.lower() == "succeeded" and (self.exit_code or 0) == 0

    @property
    def finished(self) -> bool:
        """No longer running."""
        return self.state.lower() not in ("running", "pending", "")

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines of stdout and stderr (each line bounded), redacted, for an error
        message."""
        parts = []
        for label, output in (("stdout", self.stdout), ("stderr", self.stderr)):
            kept = tail_lines(output, lines)
            if kept:
                cut = len((output or "").encode("utf-8")) >= OUTPUT_LIMIT
                note = " (Azure keeps only its last 4 KiB)" if cut else ""
                parts.append(
                    f"--- last {len(kept)} line(s) of {label}{note} ---\n" + "\n".join(kept)
                )
        return redact("\n".join(parts)) or "(no output)"


def powershell_prelude(names: list[str]) -> str:
    """Lines that turn run command parameters into environment variables (PowerShell)."""
    if not names:
        return ""
    params = ", ".join(f"[string]${n}" for n in names)
    sets = "\n".join(f"$env:{n} = ${n}" for n in names)
    return f"param({params})\n{sets}\n"


def _from_resource(name: str, found: Any) -> RunCommandResult:
    view = found.instance_view
    tags = dict(found.tags or {})
    provisioning = text(found.provisioning_state or "")
    if view is None:
        return RunCommandResult(name, found.id, "Unknown", None, "", "", tags, provisioning)
    return RunCommandResult(
        name=name,
        id=found.id,
        state=text(view.execution_state or "Unknown"),
        exit_code=view.exit_code,
        stdout=text(view.output or ""),
        stderr=text(view.error or ""),
        tags=tags,
        provisioning=provisioning,
    )


def _watch(
    ctx: Calls,
    where: tuple[str, str, str],
    probe: Callable[[], Any],
    settle: Callable[[], Any],
    timeout_s: float,
    waiter: Callable[[float], None] | None = None,
) -> Any:
    """Poll `probe` (value or None) until it has a value. Between polls read VM `vm` of
    `where` (group, vm, run command) now and then: when it stopped, or its agent stayed Not
    Ready, `settle()` has a last say (the command may have ended just before), else
    GuestGone. `waiter`: what to wait on between polls instead of sleeping (a poller's
    `wait`, which returns as soon as its operation ends)."""
    group, vm, name = where
    every = poll_interval(ctx, 30)
    state = {"next": ctx.clock.monotonic() + every, "not_ready": 0}

    def gone(reason: str, power: str) -> Any:
        value = settle()
        if value is None:
            raise GuestGone(vm, name, reason, power)
        return value

    def check() -> Any:
        value = probe()
        if value is not None or ctx.clock.monotonic() < state["next"]:
            return value
        state["next"] = ctx.clock.monotonic() + every
        found = read_vm(ctx, group, vm)
        power = power_state(found) if found is not None else "deleted"
        if power not in ("running", "starting", "unknown"):
            return gone("stopped", power)
        state["not_ready"] = state["not_ready"] + 1 if agent_ready(found) is False else 0
        if state["not_ready"] >= AGENT_GONE_READS:
            return gone("agent", power)
        return None

    what = f"{name} to run in {vm}"
    interval = poll_interval(ctx, 2)
    return ctx.poll(check, what, interval_s=interval, timeout_s=timeout_s, waiter=waiter)


def _await(
    ctx: Calls,
    poller: Poller,
    where: tuple[str, str, str],
    timeout_s: float,
    *,
    managed: bool,
) -> Any:
    """The LRO's result once it ends (errors ours), watching the VM (see `_watch`). For a
    managed command the resource's instance view also says whether it ended: the poller
    may lag behind, e.g. sleeping on a throttled poll's Retry-After while the VM stops."""
    group, vm, name = where
    fixed_rate(poller)

    def probe() -> bool | None:
        return True if poller.done() else None

    def settle() -> bool | None:
        # The client polls on its own clock: give it time to see an end that came first.
        poller.wait(max(1.0, 10 * poll_interval(ctx, 30)))
        if probe() is None and managed:
            found = observe(ctx, group, vm, name)
            return True if found is not None and found.finished else None
        return probe()

    try:
        with azure_call(f"run command {name} on {vm}"):
            # Woken by the poller's end, not a poll interval after it.
            _watch(ctx, where, probe, settle, timeout_s, waiter=poller.wait)
            return poller.result()
    finally:
        abandon(poller)  # the VM went away or the run stops: no thread left polling


def observe(ctx: Calls, group: str, vm: str, name: str) -> RunCommandResult | None:
    """The managed run command `name` on `vm` with its outcome, or None when there is none."""
    commands = ctx.clients.compute.virtual_machine_run_commands
    try:
        found = commands.get_by_virtual_machine(group, vm, name, expand="instanceView")
    except SdkAzureError as exc:
        err = translate(exc, f"read run command {name}")
        if is_not_found(err) or (err.code or "") in UNSUPPORTED:
            return None
        raise err from exc
    return _from_resource(name, found)


def run(
    ctx: Calls,
    group: str,
    vm: str,
    name: str,
    script: str,
    *,
    os_type: str,
    location: str,
    tags: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, str] | None = None,
    timeout_s: int = 1800,
    async_execution: bool = False,
) -> RunCommandResult:
    """Run `script` as managed run command `name` (re-running a finished one), and wait."""
    env, secret_env = dict(env or {}), dict(secret_env or {})
    for value in secret_env.values():
        register_secret(value)
    if os_type == "windows":
        script = powershell_prelude(sorted(env) + sorted(secret_env)) + script
    commands = ctx.clients.compute.virtual_machine_run_commands
    body = VirtualMachineRunCommand(
        location=location,
        tags=dict(tags),
        properties=VirtualMachineRunCommandProperties(
            source=VirtualMachineRunCommandScriptSource(script=script),
            parameters=_parameters(env),
            protected_parameters=_parameters(secret_env),
            timeout_in_seconds=timeout_s,
            async_execution=async_execution,
            treat_failure_as_deployment_failure=False,
        ),
    )
    try:
        existing = observe(ctx, group, vm, name)
    except AzureError:
        existing = None
    if existing is not None and not existing.finished and not existing.stuck:
        # Sent before (a run cut short): wait for that one rather than running it twice.
        def ended() -> RunCommandResult | None:
            found = observe(ctx, group, vm, name)
            return found if found is None or found.finished else None

        waited = _watch(ctx, (group, vm, name), ended, ended, timeout_s + 300)
        if waited is not None:
            return waited
        existing = None
    if existing is not None and (existing.finished or existing.stuck):
        # A finished command re-runs only when re-created (a stuck one runs only so):
        # delete it first.
        begin_and_wait(
            ctx,
            f"delete run command {name}",
            f"old run command {name} to be deleted",
            commands.begin_delete,
            group,
            vm,
            name,
        )
    try:
        with azure_call(f"run command {name} on {vm}"):
            poller = commands.begin_create_or_update(group, vm, name, body)
    except AzureError as err:
        if (err.code or "") in UNSUPPORTED:
            return run_action(
                ctx,
                group,
                vm,
                name,
                script,
                os_type=os_type,
                env=env,
                secret_env=secret_env,
                timeout_s=timeout_s,
            )
        raise
    _await(ctx, poller, (group, vm, name), timeout_s + 300, managed=True)
    found = observe(ctx, group, vm, name)
    if found is None:
        return RunCommandResult(name, None, "Unknown", None, "", "the run command vanished")
    return found


def _parameters(values: Mapping[str, str]) -> list[RunCommandInputParameter]:
    """Run command parameters, sorted by name."""
    return [RunCommandInputParameter(name=k, value=v) for k, v in sorted(values.items())]


def run_action(
    ctx: Calls,
    group: str,
    vm: str,
    name: str,
    script: str,
    *,
    os_type: str,
    env: Mapping[str, str],
    secret_env: Mapping[str, str],
    timeout_s: int,
) -> RunCommandResult:
    """The action run command (no resource left behind): for clouds without managed ones."""
    command_id = "RunPowerShellScript" if os_type == "windows" else "RunShellScript"
    if os_type != "windows":
        exports = "".join(f'export {k}="${k}"\n' for k in sorted({**env, **secret_env}))
        script = exports + script
    body = RunCommandInput(
        command_id=command_id,
        script=script.splitlines(),
        parameters=_parameters({**env, **secret_env}),
    )
    with azure_call(f"run command {name} on {vm}"):
        poller = ctx.clients.compute.virtual_machines.begin_run_command(group, vm, body)
    result = _await(ctx, poller, (group, vm, name), timeout_s + 300, managed=False)
    stdout, stderr, failed = "", "", False
    for status in getattr(result, "value", None) or []:
        code = text(status.code or "")
        if "StdOut" in code:
            stdout = text(status.message or "")
        elif "StdErr" in code:
            stderr = text(status.message or "")
        if "failed" in code.lower() or text(status.level or "").lower() == "error":
            failed = True
    state = "Failed" if failed else "Succeeded"
    return RunCommandResult(name, None, state, 1 if failed else 0, stdout, stderr)
