"""Step `generalize`: make the build VM capturable - remove every VM extension (Batch rejects
images with extensions) and verify none remain, deprovision in the guest (`waagent
-deprovision+user -force`, or sysprep `/generalize /oobe /shutdown /mode:vm` waiting for
the VM to stop), deallocate, and mark it generalized. Each sub-step is skipped when its
result is already there, so a generalized VM is never deprovisioned twice."""

from __future__ import annotations

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
from batchimage.steps.base import RunContext, Step, short_hash
from batchimage.steps.create_vm import CreateVm, VmOutputs, is_generalized, power_state, read_vm

LINUX_DEPROVISION = "waagent -deprovision+user -force"
WINDOWS_SYSPREP = (
    '& "$env:SystemRoot\\System32\\Sysprep\\Sysprep.exe" /generalize /oobe /shutdown /mode:vm'
)
SYSPREP_DIAGNOSE = "\n".join(
    [
        "$key = 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State'",
        "$state = (Get-ItemProperty $key).ImageState",
        'Write-Output "ImageState: $state"',
        '$log = "$env:SystemRoot\\System32\\Sysprep\\Panther\\setuperr.log"',
        "if (Test-Path $log) { Get-Content $log -Tail 20 }",
    ]
)


class GeneralizedOutputs(VmOutputs):
    """The build VM, ready to capture (generalized unless the spec turned that off)."""

    generalized: bool


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
        previous = observe(ctx, vm.group, vm.name, self.deprovision_name)
        if previous is not None and previous.succeeded:
            return  # deprovisioned already (the run stopped before deallocating)
        windows = spec.os_type == "windows"
        command = spec.image.generalize.command or (
            WINDOWS_SYSPREP if windows else LINUX_DEPROVISION
        )
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
        """Sysprep shuts the VM down when it succeeds; a VM still running means it failed."""

        def stopped() -> bool | None:
            found = self._read(ctx)
            return (
                True
                if found is not None and power_state(found) in ("stopped", "deallocated")
                else None
            )

        try:
            ctx.poll(
                stopped,
                f"sysprep to shut {vm.name} down",
                interval_s=poll_interval(ctx, 10),
                timeout_s=self.timeout_s,
            )
        except TimeoutError as exc:
            diagnosis = run(
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
            raise StepFailedError(
                self.key,
                f"sysprep did not shut {vm.name} down within {self.timeout_s} s\n"
                + diagnosis.tail(),
                resource=vm.name,
                hint="a classic cause is an AppX package installed for one user or a pending "
                "Windows update; fix it in a customize step, then run apply again",
            ) from exc

    def describe(self) -> str:
        return f"generalize {self.names.vm}" if self.enabled else f"deallocate {self.names.vm}"
