"""Step `generalize`: make the build VM capturable - remove every VM extension (Batch rejects
images with extensions) and verify none remain, deprovision in the guest (`waagent
-deprovision+user -force`, or sysprep `/generalize /oobe /shutdown /mode:vm` waiting for
the VM to stop), deallocate, and mark it generalized. Each sub-step is skipped when its
result is already there, so a generalized VM is never deprovisioned twice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batchimage.azure.arm import (
    begin_and_wait,
    poll_interval,
    resource_tags,
    tags_of,
    text,
)
from batchimage.azure.errors import azure_call
from batchimage.azure.names import IMAGE_TAG, BuildNames
from batchimage.azure.runcommand import observe, run
from batchimage.errors import StepFailedError
from batchimage.steps.base import RunContext, Step, Verb, short_hash
from batchimage.steps.create_vm import CreateVm, VmOutputs, is_generalized, power_state, read_vm

LINUX_DEPROVISION = "waagent -deprovision+user -force"
WINDOWS_SYSPREP = (
    '& "$env:SystemRoot\\System32\\Sysprep\\Sysprep.exe" /generalize /oobe /shutdown /mode:vm'
)
SYSPREP_DIAGNOSE = "\n".join(
    [
        "$status = Get-ItemProperty -EA SilentlyContinue `",
        "  'HKLM:\\SYSTEM\\Setup\\Status\\SysprepStatus'",
        "$state = Get-ItemProperty -EA SilentlyContinue `",
        "  'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State'",
        'Write-Output "GeneralizationState: $($status.GeneralizationState)"',
        'Write-Output "ImageState: $($state.ImageState)"',
        'Write-Output "SysprepRunning: $([bool](Get-Process sysprep -EA SilentlyContinue))"',
        '$log = "$env:SystemRoot\\System32\\Sysprep\\Panther\\setuperr.log"',
        "if (Test-Path $log) { Get-Content $log -Tail 20 }",
    ]
)
DIAGNOSE_EVERY = 6  # polls (a minute at Azure's 10 s interval) between guest checks
SEALED = ("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", "IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT")
_FACT = re.compile(r"^(GeneralizationState|ImageState|SysprepRunning):[ \t]*(.*)$")
SYSPREP_HINT = (
    "read setuperr.log; the classic causes are an AppX package installed for one user but "
    "not provisioned for all (Remove-AppxPackage it for that user), a pending Windows Update "
    "reboot (restart in a customize step before generalizing) and BitLocker on the OS disk "
    "(turn it off); fix it in a customize step and run apply again on a fresh build VM "
    "(batchimage destroy, then apply): sysprep can be run only a limited number of times "
    "(rearm count) on one Windows image"
)


def deprovision_command(spec: Any) -> str:
    """The command that generalizes the build VM's guest: the spec's, else batchimage's."""
    default = WINDOWS_SYSPREP if spec.os_type == "windows" else LINUX_DEPROVISION
    return str(spec.image.generalize.command or default)


@dataclass(frozen=True)
class SysprepState:
    """What the guest says about sysprep: setup state values and setuperr.log's tail."""

    image_state: str
    generalization_state: str
    running: bool
    log: list[str]

    @classmethod
    def parse(cls, output: str) -> SysprepState:
        facts: dict[str, str] = {}
        log = []
        for line in output.splitlines():
            match = _FACT.match(line.strip())
            if match:
                facts[match.group(1)] = match.group(2).strip()
            elif line.strip():
                log.append(line.rstrip())
        return cls(
            image_state=facts.get("ImageState", ""),
            generalization_state=facts.get("GeneralizationState", ""),
            running=facts.get("SysprepRunning", "").lower() == "true",
            log=log,
        )

    @property
    def failed(self) -> bool:
        """Sysprep ended without sealing the image (an empty answer proves nothing)."""
        return bool(self.image_state) and not self.running and self.image_state not in SEALED


class GeneralizedOutputs(VmOutputs):
    """The build VM, ready to capture (generalized unless the spec turned that off)."""

    generalized: bool


DEALLOCATE = Verb("deallocate", "deallocating", "deallocated", "changed")


class GeneralizeVm(Step[GeneralizedOutputs]):
    """Extensions removed, deprovisioned, deallocated, generalized."""

    kind = "generalize_vm"
    key = "generalize"

    def __init__(self, spec: Any, vm: CreateVm, last: Step[Any]) -> None:
        self.depends_on = (vm,) if last is vm else (vm, last)
        self.settings = spec.image.generalize.model_dump(mode="json")
        self.names = BuildNames.of(spec)
        self.timeout_s = spec.timeouts.generalize_s
        self.deprovision_name = f"generalize-{short_hash(self.settings)[:8]}"

    @property
    def enabled(self) -> bool:
        return bool(self.settings["enabled"])

    def inputs(self) -> dict[str, Any]:
        return {"generalize": self.settings}

    def _read(self, ctx: RunContext) -> Any:
        vm = ctx.output(CreateVm)
        return read_vm(ctx, vm.group, vm.name)

    def _extensions(self, ctx: RunContext) -> list[str]:
        vm = ctx.output(CreateVm)
        with azure_call(f"list extensions of VM {vm.name}"):
            found = ctx.clients.compute.virtual_machine_extensions.list(vm.group, vm.name)
        items = getattr(found, "value", found) or []
        return [text(e.name) for e in items]

    def check(self, ctx: RunContext) -> GeneralizedOutputs | None:
        found = self._read(ctx)
        if found is None:
            return None
        done = is_generalized(found) if self.enabled else power_state(found) == "deallocated"
        if not done or self._extensions(ctx):
            return None
        vm = ctx.output(CreateVm)
        facts = vm.model_dump(exclude={"resources", "observed_fingerprint"})
        return GeneralizedOutputs(**facts, generalized=self.enabled)

    def apply(self, ctx: RunContext) -> GeneralizedOutputs | None:
        from batchimage.steps.cleanup_build import after_failure

        try:
            self._apply(ctx)
        except Exception as exc:
            after_failure(ctx, exc)
            raise
        return None

    def _apply(self, ctx: RunContext) -> None:
        vm = ctx.output(CreateVm)
        compute = ctx.clients.compute
        found = self._read(ctx)
        if found is None:
            raise StepFailedError(
                self.key,
                f"build VM {vm.name} is gone",
                resource=vm.name,
                hint="run apply again to build it anew",
            )
        if self.enabled and is_generalized(found):
            return
        state = power_state(found)
        if state == "running":
            self._remove_extensions(ctx, vm)
            if self.enabled:
                self._deprovision(ctx, vm)
        elif self._extensions(ctx):
            raise StepFailedError(
                self.key,
                f"VM {vm.name} is {state} and still has extensions: "
                + ", ".join(self._extensions(ctx)),
                resource=vm.name,
                hint=f"start the VM (az vm start -g {vm.group} -n {vm.name}) and run apply again",
            )
        found = self._read(ctx)
        tags = tags_of(found)
        if tags.get(IMAGE_TAG) != self.names.image:
            begin_and_wait(
                ctx,
                f"tag VM {vm.name}",
                f"{vm.name} tags",
                compute.virtual_machines.begin_update,
                vm.group,
                vm.name,
                {"tags": resource_tags(ctx, tags, **{IMAGE_TAG: self.names.image})},
            )
        if power_state(found) != "deallocated":
            begin_and_wait(
                ctx,
                f"deallocate VM {vm.name}",
                f"{vm.name} to deallocate",
                compute.virtual_machines.begin_deallocate,
                vm.group,
                vm.name,
                timeout_s=self.timeout_s,
            )
        if self.enabled:
            with azure_call(f"generalize VM {vm.name}"):
                compute.virtual_machines.generalize(vm.group, vm.name)

    def _remove_extensions(self, ctx: RunContext, vm: Any) -> None:
        extensions = ctx.clients.compute.virtual_machine_extensions
        names = self._extensions(ctx)
        for name in names:
            ctx.say(f"removing extension {name} from {vm.name}")
            begin_and_wait(
                ctx,
                f"delete extension {name}",
                f"extension {name} to be removed",
                extensions.begin_delete,
                vm.group,
                vm.name,
                name,
            )
        left = self._extensions(ctx)
        if left:
            raise StepFailedError(
                self.key,
                f"extensions still on {vm.name} after removal: {', '.join(left)}",
                resource=vm.name,
                hint="remove them (az vm extension delete) and run apply again; Batch rejects "
                "images with extensions baked in",
            )

    def _deprovision(self, ctx: RunContext, vm: Any) -> None:
        spec = ctx.spec
        windows = spec.os_type == "windows"
        previous = observe(ctx, vm.group, vm.name, self.deprovision_name)
        if previous is not None and previous.succeeded and not windows:
            return  # deprovisioned already (the run stopped before deallocating)
        # A Windows VM still running after a sysprep run was not sealed: sysprep runs again.
        command = deprovision_command(spec)
        ctx.say(f"deprovisioning {vm.name}: {command}")
        result = run(
            ctx,
            vm.group,
            vm.name,
            self.deprovision_name,
            command,
            os_type=spec.os_type,
            location=spec.location,
            tags=resource_tags(ctx, None),
            timeout_s=self.timeout_s,
            async_execution=windows,
        )
        if windows:
            self._wait_for_sysprep(ctx, vm)
            return
        if not result.succeeded:
            raise StepFailedError(
                self.key,
                f"deprovisioning {vm.name} failed (exit code {result.exit_code})\n{result.tail()}",
                resource=vm.name,
                hint="fix image.generalize.command or the guest, then run apply again",
            )

    def _wait_for_sysprep(self, ctx: RunContext, vm: Any) -> None:
        """Sysprep shuts the VM down when it succeeds; while the VM still runs, ask the guest
        on the first poll and every DIAGNOSE_EVERY polls after, and fail at once when the
        setup state says sysprep failed (instead of waiting out the timeout)."""
        polls = 0

        def stopped() -> bool | None:
            nonlocal polls
            found = self._read(ctx)
            if found is not None and power_state(found) in ("stopped", "deallocated"):
                return True
            if polls % DIAGNOSE_EVERY == 0:
                self._fail_if_sysprep_failed(ctx, vm, self._diagnose(ctx, vm))
            polls += 1
            return None

        try:
            ctx.poll(
                stopped,
                f"sysprep to shut {vm.name} down",
                interval_s=poll_interval(ctx, 10),
                timeout_s=self.timeout_s,
            )
        except TimeoutError as exc:
            state = self._diagnose(ctx, vm)
            self._fail_if_sysprep_failed(ctx, vm, state)
            raise StepFailedError(
                self.key,
                f"sysprep did not shut {vm.name} down within {self.timeout_s} s "
                f"(ImageState {state.image_state or 'unknown'})\n" + "\n".join(state.log[-10:]),
                resource=vm.name,
                hint=SYSPREP_HINT,
            ) from exc

    def _diagnose(self, ctx: RunContext, vm: Any) -> SysprepState:
        """Read the guest's setup state and the tail of setuperr.log."""
        result = run(
            ctx,
            vm.group,
            vm.name,
            "generalize-diagnose",
            SYSPREP_DIAGNOSE,
            os_type="windows",
            location=ctx.spec.location,
            tags=resource_tags(ctx, None),
            timeout_s=300,
        )
        return SysprepState.parse(result.stdout)

    def _fail_if_sysprep_failed(self, ctx: RunContext, vm: Any, state: SysprepState) -> None:
        if not state.failed:
            return
        tail = state.log[-10:]
        raise StepFailedError(
            self.key,
            f"sysprep failed on {vm.name}: ImageState {state.image_state}, "
            f"GeneralizationState {state.generalization_state or 'unset'} (7 means generalized)"
            + (
                f"\n--- last {len(tail)} line(s) of setuperr.log ---\n" + "\n".join(tail)
                if tail
                else "\n(setuperr.log is empty)"
            ),
            resource=vm.name,
            hint=SYSPREP_HINT,
        )

    def describe(self) -> str:
        return f"generalize {self.names.vm}" if self.enabled else f"deallocate {self.names.vm}"

    def wording(self, action: str) -> Verb:
        return super().wording(action) if self.enabled else DEALLOCATE
