"""Step `generalize`: make the build VM capturable - remove every VM extension (Batch rejects
images with extensions) and verify none remain, deprovision in the guest, deallocate, and
mark it generalized. Each sub-step is skipped when its result is already there, so a
generalized VM is never deprovisioned twice.

Linux: a run command schedules `waagent -deprovision+user -force` and a power-off in a
systemd unit a minute later (see `generalize_scripts`), so the run command reports before
the deprovisioning stops the guest agent; the step then waits for the VM to power off.
Windows: sysprep `/generalize /oobe /shutdown /mode:vm` runs asynchronously and the step
waits for the VM to stop, asking the guest now and then whether sysprep failed (a check
the stopping VM cuts short means sysprep finished). A VM found stopped or deallocated
before its guest was deprovisioned is started to deprovision it; one whose deprovisioning
was started before (by a run cut short: the VM carries tag `Marks.Tag.GENERALIZE`) is not
deprovisioned again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from batchimage.azure import guest
from batchimage.azure.arm import poll_interval, tags_of
from batchimage.azure.guest import agent_ready, power_state, read_vm, set_tags
from batchimage.azure.runcommand import GuestGone, observe, run
from batchimage.core.errors import AzureError, StepFailedError
from batchimage.core.hashing import short_hash
from batchimage.core.ownership import Marks
from batchimage.steps.base import RunContext, Step, StepInputs, runs_again
from batchimage.steps.create_vm import CreateVm, VmOutputs, is_generalized
from batchimage.steps.generalize_scripts import (
    DEPROVISION_DELAY_S,
    GENERALIZE_UNIT,
    LINUX_DEPROVISION,
    SYSPREP_DIAGNOSE,
    SYSPREP_HINT,
    WINDOWS_SYSPREP,
    SysprepState,
    linux_launcher,
)
from batchimage.steps.marks import resource_tags
from batchimage.steps.names import BuildNames
from batchimage.steps.verbs import Verb

DIAGNOSE_EVERY = 6  # polls (a minute at Azure's 10 s interval) between guest checks
STOPPED = ("stopped", "deallocated")
AGENT_DOWN_HINT = (
    "no run command can reach a VM whose guest agent is down; delete the build VM "
    "(batchimage destroy) and run apply again"
)


def deprovision_command(spec: Any) -> str:
    """The command that generalizes the build VM's guest: the spec's, else batchimage's."""
    default = WINDOWS_SYSPREP if spec.os_type == "windows" else LINUX_DEPROVISION
    return str(spec.image.generalize.command or default)


class GeneralizedOutputs(VmOutputs):
    """The build VM, ready to capture (generalized unless the spec turned that off)."""

    generalized: bool


DEALLOCATE = Verb("deallocate", "deallocating", "deallocated", "changed")


class GeneralizeInputs(StepInputs):
    """The spec's `image.generalize` (hashed); read, not hashed: the OS, the command it
    runs, the region and tags of its run commands, its time limit, the build's names."""

    generalize: dict[str, Any]
    os_type: str = Field(exclude=True)
    command: str = Field(exclude=True)
    location: str = Field(exclude=True)
    tags: dict[str, str] = Field(exclude=True)
    timeout_s: int = Field(exclude=True)
    names: BuildNames = Field(exclude=True)


class GeneralizeVm(Step[GeneralizedOutputs]):
    """Extensions removed, deprovisioned, deallocated, generalized."""

    given: GeneralizeInputs

    kind = "generalize_vm"
    key = "generalize"

    def __init__(self, spec: Any, vm: CreateVm, last: Step[Any]) -> None:
        self.depends_on = (vm,) if last is vm else (vm, last)
        self.given = GeneralizeInputs(
            generalize=spec.image.generalize.model_dump(mode="json"),
            os_type=spec.os_type,
            command=deprovision_command(spec),
            location=spec.location,
            tags=dict(spec.tags),
            timeout_s=spec.timeouts.generalize_s,
            names=BuildNames.of(spec),
        )
        self.deprovision_name = f"generalize-{short_hash(self.given.generalize)[:8]}"

    @property
    def enabled(self) -> bool:
        return bool(self.given.generalize["enabled"])

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        return runs_again(CreateVm.key, changing, "generalizes" if self.enabled else "deallocates")

    def _read(self, ctx: RunContext) -> Any:
        vm = ctx.output(CreateVm)
        return read_vm(ctx, vm.group, vm.name)

    def _extensions(self, ctx: RunContext) -> list[str]:
        vm = ctx.output(CreateVm)
        return guest.extensions(ctx, vm.group, vm.name)

    def absent(self, ctx: RunContext) -> bool:
        """No build VM of this name: nothing is generalized."""
        return read_vm(ctx, self.given.names.group, self.given.names.vm) is None

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
        from batchimage.steps.cleanup_build import cleaning_up_after_failure

        cleaning_up_after_failure(ctx, self._apply)
        return None

    def _apply(self, ctx: RunContext) -> None:
        vm = ctx.output(CreateVm)
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
        if self.enabled and state in STOPPED and not self._launched(ctx, vm, found):
            ctx.say(f"{vm.name} is {state} but its guest was not deprovisioned: starting it")
            guest.start(ctx, vm.group, vm.name, timeout_s=self.given.timeout_s)
            state = "running"
        off = None  # the VM as last read powered off, when that read is the latest
        if state == "running":
            self._remove_extensions(ctx, vm)
            if self.enabled:
                off = self._deprovision(ctx, vm, found)
        elif self._extensions(ctx):
            raise StepFailedError(
                self.key,
                f"VM {vm.name} is {state} and still has extensions: "
                + ", ".join(self._extensions(ctx)),
                resource=vm.name,
                hint=f"start the VM (az vm start -g {vm.group} -n {vm.name}) and run apply again",
            )
        found = off or self._read(ctx)
        if tags_of(found).get(Marks.Tag.IMAGE) != self.given.names.image:
            self._tag(ctx, vm, found, **{Marks.Tag.IMAGE: self.given.names.image})
        if power_state(found) != "deallocated":
            guest.deallocate(ctx, vm.group, vm.name, timeout_s=self.given.timeout_s)
        if self.enabled:
            guest.mark_generalized(ctx, vm.group, vm.name)

    def _remove_extensions(self, ctx: RunContext, vm: Any) -> None:
        """Remove every extension and verify none is left (listed again after a removal)."""
        found = self._extensions(ctx)
        for name in found:
            ctx.say(f"removing extension {name} from {vm.name}")
            guest.remove_extension(ctx, vm.group, vm.name, name)
        left = self._extensions(ctx) if found else []
        if left:
            raise StepFailedError(
                self.key,
                f"extensions still on {vm.name} after removal: {', '.join(left)}",
                resource=vm.name,
                hint="remove them (az vm extension delete) and run apply again; Batch rejects "
                "images with extensions baked in",
            )

    def _launched(self, ctx: RunContext, vm: Any, found: Any) -> bool:
        """Whether this deprovisioning command was started in the guest (also by a run cut
        short): the VM's tag, or the managed run command that succeeded."""
        if tags_of(found).get(Marks.Tag.GENERALIZE) == self.deprovision_name:
            return True
        previous = observe(ctx, vm.group, vm.name, self.deprovision_name)
        return previous is not None and previous.succeeded

    def _mark_launched(self, ctx: RunContext, vm: Any) -> None:
        extra = {
            Marks.Tag.GENERALIZE: self.deprovision_name,
            Marks.Tag.IMAGE: self.given.names.image,
        }
        self._tag(ctx, vm, self._read(ctx), **extra)

    def _tag(self, ctx: RunContext, vm: Any, found: Any, **extra: str) -> None:
        """Add `extra` to the build VM's tags and keep the rest: the VM stays build.vm's
        (its step and fingerprint tags are what build.vm's check compares)."""
        set_tags(ctx, vm.group, vm.name, {**tags_of(found), **extra})

    def _run_in_guest(self, ctx: RunContext, vm: Any, script: str, **options: Any) -> Any:
        """Run the deprovisioning script as this step's run command (a guest agent that is
        down fails the step with what to do)."""
        try:
            return run(
                ctx,
                vm.group,
                vm.name,
                self.deprovision_name,
                script,
                os_type=self.given.os_type,
                location=self.given.location,
                tags=resource_tags(ctx, self.given.tags),
                timeout_s=self.given.timeout_s,
                **options,
            )
        except GuestGone as exc:
            raise StepFailedError(self.key, exc, resource=vm.name, hint=AGENT_DOWN_HINT) from exc

    def _deprovision(self, ctx: RunContext, vm: Any, found: Any) -> Any:
        """Deprovision the guest of `vm` (`found`: the VM as read before, for its tags);
        the VM as last read, powered off (None: not known)."""
        if self.given.os_type == "windows":
            self._sysprep(ctx, vm)
            return None
        return self._deprovision_linux(ctx, vm, found)

    def _deprovision_linux(self, ctx: RunContext, vm: Any, found: Any) -> Any:
        """Schedule the deprovisioning and power-off in the guest, then wait for the VM to
        power off (never waiting on a run command that deprovisions: it cannot report).
        `found`: the VM as read before (its tags say whether a run started this already;
        only this step changes them). Returns the VM as read powered off."""
        ended: float | None = None  # when the scheduling command was seen ended
        if self._launched(ctx, vm, found):
            ctx.say(f"{vm.name} was deprovisioning already")
        else:
            command = self.given.command
            ctx.say(
                f"deprovisioning {vm.name} in {DEPROVISION_DELAY_S} s, then powering it off: "
                f"{command}"
            )
            result = self._run_in_guest(ctx, vm, linux_launcher(command))
            ended = ctx.clock.monotonic()
            if not result.succeeded:
                raise StepFailedError(
                    self.key,
                    f"could not schedule the deprovisioning of {vm.name} (state "
                    f"{result.state}, exit code {result.exit_code})\n{result.tail()}",
                    resource=vm.name,
                    hint="the guest needs systemd-run to deprovision outside the guest agent; "
                    "fix the guest or image.generalize.command, then run apply again",
                )
            self._mark_launched(ctx, vm)
        return self._wait_powered_off(ctx, vm, ended)

    def _wait_powered_off(self, ctx: RunContext, vm: Any, ended: float | None) -> Any:
        """Read the VM until it is off: at a fixed rate from `ended` (when the command that
        scheduled the unit was seen ended, if this run sent it), so the read due when the
        unit starts, DEPROVISION_DELAY_S (a whole number of Azure's 10 s poll intervals)
        after the command's end, comes right after it rather than up to an interval late."""

        def off() -> Any:
            found = self._read(ctx)
            if found is None:
                raise StepFailedError(self.key, f"build VM {vm.name} is gone", resource=vm.name)
            return found if power_state(found) in STOPPED else None

        timeout = self.given.timeout_s + DEPROVISION_DELAY_S
        try:
            return ctx.poll(
                off,
                f"{vm.name} to deprovision and power off",
                interval_s=poll_interval(ctx, 10),
                timeout_s=timeout,
                phase_from=ended,
            )
        except TimeoutError as exc:
            found = self._read(ctx)
            if found is not None and agent_ready(found) is False:
                why = (
                    "its guest agent stopped, so the deprovisioning began, but the VM did not "
                    "power off: the deprovisioning command failed or hangs"
                )
            else:
                why = f"the systemd unit {GENERALIZE_UNIT} did not start the deprovisioning"
            raise StepFailedError(
                self.key,
                f"VM {vm.name} did not power off within {timeout} s of scheduling its "
                f"deprovisioning: {why}",
                resource=vm.name,
                hint=f"read the unit's log on the VM's serial console (journalctl -u "
                f"{GENERALIZE_UNIT}) or in its boot diagnostics, fix image.generalize.command "
                "if it is yours, then delete the build VM (batchimage destroy) and run apply "
                "again",
            ) from exc

    def _sysprep(self, ctx: RunContext, vm: Any) -> None:
        """Run sysprep (again, when the VM still runs after one: it was not sealed) and wait
        for it to shut the VM down."""
        command = self.given.command
        ctx.say(f"deprovisioning {vm.name}: {command}")
        self._run_in_guest(ctx, vm, command, async_execution=True)
        self._mark_launched(ctx, vm)
        self._wait_for_sysprep(ctx, vm)

    def _wait_for_sysprep(self, ctx: RunContext, vm: Any) -> None:
        """Sysprep shuts the VM down when it succeeds; while the VM still runs, ask the guest
        on the first poll and every DIAGNOSE_EVERY polls after, and fail at once when the
        setup state says sysprep failed (instead of waiting out the timeout)."""
        polls = 0

        def stopped() -> bool | None:
            nonlocal polls
            found = self._read(ctx)
            if found is not None and power_state(found) in STOPPED:
                return True
            if polls % DIAGNOSE_EVERY == 0:
                state = self._diagnose(ctx, vm)
                if state is None:  # the check was cut short: see whether the VM stopped
                    return self._stopped_now(ctx)
                self._fail_if_sysprep_failed(ctx, vm, state)
            polls += 1
            return None

        try:
            ctx.poll(
                stopped,
                f"sysprep to shut {vm.name} down",
                interval_s=poll_interval(ctx, 10),
                timeout_s=self.given.timeout_s,
            )
        except TimeoutError as exc:
            state = self._diagnose(ctx, vm) or SysprepState.parse("")
            self._fail_if_sysprep_failed(ctx, vm, state)
            raise StepFailedError(
                self.key,
                f"sysprep did not shut {vm.name} down within {self.given.timeout_s} s "
                f"(ImageState {state.image_state or 'unknown'})\n" + "\n".join(state.log[-10:]),
                resource=vm.name,
                hint=SYSPREP_HINT,
            ) from exc

    def _stopped_now(self, ctx: RunContext) -> bool | None:
        """True when the build VM is stopped or deallocated now (None otherwise)."""
        found = self._read(ctx)
        return True if found is not None and power_state(found) in STOPPED else None

    def _diagnose(self, ctx: RunContext, vm: Any) -> SysprepState | None:
        """Read the guest's setup state and the tail of setuperr.log; None when the check
        could not finish (sysprep stopped the VM, or the agent, under it) or could not start
        (sysprep stopped the VM between the last read and the check: Azure refuses a run
        command on a VM that is not running)."""
        try:
            result = run(
                ctx,
                vm.group,
                vm.name,
                "generalize-diagnose",
                SYSPREP_DIAGNOSE,
                os_type="windows",
                location=self.given.location,
                tags=resource_tags(ctx, self.given.tags),
                timeout_s=300,
            )
        except GuestGone as exc:
            ctx.say(f"the sysprep check ended with the guest: {exc.reason}")
            return None
        except AzureError as err:
            if err.code != "OperationNotAllowed" or not self._stopped_now(ctx):
                raise
            ctx.say(f"the sysprep check found {vm.name} stopped already")
            return None
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
        return (
            f"generalize {self.given.names.vm}"
            if self.enabled
            else f"deallocate {self.given.names.vm}"
        )

    def wording(self, action: str) -> Verb:
        return super().wording(action) if self.enabled else DEALLOCATE
