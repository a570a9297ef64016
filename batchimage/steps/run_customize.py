"""Step `customize.<i>`: one customize entry on the build VM, in spec order - a script (shell
or PowerShell, inline or from a file) as a managed run command named after its content, a
file staged in blob storage and fetched in the guest with a SHA-256 check, or a restart that
waits for the guest agent. A failing script stops the run with the step index, its exit
code and the last lines of its output; the VM is kept or deleted per `cleanup`.

Secrets (`secret_env` values, a staged file's read SAS URL) go only as protected
parameters, never in the script text: Azure does not return them to anyone reading the
run command resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from batchimage.azure import guest
from batchimage.azure.arm import BLOB, poll_interval, tags_of
from batchimage.azure.blobs import blob_id, read_sas_url
from batchimage.azure.guest import agent_ready, power_state, read_vm, set_tags
from batchimage.azure.runcommand import GuestGone, RunCommandResult, observe, run
from batchimage.azure.staging import FETCH_URL, fetch_script, staged_blob_name
from batchimage.core.errors import StepFailedError
from batchimage.core.hashing import short_hash
from batchimage.core.ownership import STAGING_CONTAINER, Marks
from batchimage.core.refs import ResourceRef
from batchimage.spec import CustomizeStep
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs, runs_again
from batchimage.steps.create_vm import CreateVm
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.marks import observed, owned, resource_tags
from batchimage.steps.names import BuildNames, customize_inputs
from batchimage.steps.stage_file import StageFile
from batchimage.steps.staging import StagingPlaces, staging_account

# How plan names a customize entry's content, per action ("the script changed").
CONTENT_WORDS = {
    "shell": "the script",
    "powershell": "the script",
    "shell_file": "the script file",
    "powershell_file": "the script file",
    "file": "the file",
    "restart": "the restart",
}


class CustomizeOutputs(Outputs):
    """What ran: the run command (when managed), on which VM instance, and how it ended."""

    index: int
    action: str
    vm_guid: str
    run_command: str | None = None
    exit_code: int | None = None


class CustomizeInputs(StepInputs):
    """The entry's content and time limit (hashed); read, not hashed: the spec's entry as
    it is, the OS, the region and tags of its run command, where files are staged, the
    build's names."""

    content: dict[str, Any]
    timeout_s: int
    entry: CustomizeStep = Field(exclude=True)
    os_type: str = Field(exclude=True)
    location: str = Field(exclude=True)
    tags: dict[str, str] = Field(exclude=True)
    staging: StagingPlaces = Field(exclude=True)
    names: BuildNames = Field(exclude=True)


class RunCustomize(DeletesCreated, Step[CustomizeOutputs]):
    """Customize entry `index` of the spec, after the one before it."""

    given: CustomizeInputs

    kind = "run_customize"
    apply_observes = True  # a managed command: outputs from its read once it ended

    def __init__(self, spec: Any, index: int, vm: CreateVm, previous: Step[Any] | None) -> None:
        """Entry `index`, on `vm`'s VM after `previous`; a file entry's apply needs the
        step that stages its file (`self.stage`, made here)."""
        entry = spec.image.customize[index]
        self.given = CustomizeInputs(
            content=customize_inputs(entry),
            timeout_s=int(entry.timeout_s or spec.timeouts.customize_step_s),
            entry=entry,
            os_type=spec.os_type,
            location=spec.location,
            tags=dict(spec.tags),
            staging=StagingPlaces.of(spec),
            names=vm.given.names,
        )
        self.index = index
        self.key = f"customize.{index}"
        self.depends_on = (vm,) if previous is None else (vm, previous)
        self.command = f"customize-{index}-{short_hash(self.given.content)[:8]}"
        self.stage: StageFile | None = None
        if entry.file is not None:
            sha = self.given.content["source_sha256"]
            self.stage = StageFile(index, entry.file.source, sha, self.given.staging)
            self.apply_needs = (self.stage,)

    @property
    def label(self) -> str:
        """How people know this step: its index and name (or action)."""
        return f"customize step {self.index}" + (
            f" '{self.given.entry.name}'"
            if self.given.entry.name
            else f" ({self.given.entry.action})"
        )

    @property
    def mark_tag(self) -> str:
        """The VM tag recording that this step ran (restart, or an action run command)."""
        return Marks.Tag.step_ran(self.key)

    def absent(self, ctx: RunContext) -> bool:
        """No build VM of this name: nothing ran on it."""
        return read_vm(ctx, self.given.names.group, self.given.names.vm) is None

    def check(self, ctx: RunContext) -> CustomizeOutputs | None:
        vm = ctx.output(CreateVm)
        found = (
            None
            if self.given.entry.action == "restart"
            else observe(ctx, vm.group, vm.name, self.command)
        )
        if found is None:  # a restart or an action run command leaves only the VM's mark
            raw = read_vm(ctx, vm.group, vm.name)
            if raw is None or tags_of(raw).get(self.mark_tag) != ctx.fingerprint:
                return None
            return CustomizeOutputs(
                index=self.index,
                action=self.given.entry.action,
                vm_guid=vm.vm_guid,
                observed_fingerprint=ctx.fingerprint,
            )
        return self._outputs(ctx, vm, found) if found.succeeded else None

    def _outputs(self, ctx: RunContext, vm: Any, found: RunCommandResult) -> CustomizeOutputs:
        """The outputs of managed run command `found`, which succeeded on `vm`."""
        tags = found.tags
        refs: list[ResourceRef] = []
        staged = tags.get(Marks.Tag.STAGED)
        if staged is None and owned(ctx, tags):
            staged = self._staged_id(ctx)
        if staged and owned(ctx, tags):
            refs.append(ResourceRef(id=staged, kind=BLOB, created_by_run=tags.get(Marks.Tag.RUN)))
        return CustomizeOutputs(
            index=self.index,
            action=self.given.entry.action,
            vm_guid=vm.vm_guid,
            run_command=self.command,
            exit_code=found.exit_code,
            resources=tuple(refs),
            observed_fingerprint=observed(ctx, tags),
        )

    def _staged_id(self, ctx: RunContext) -> str | None:
        """A file step's staged blob, for a run command whose tags could not hold its id
        (a tag value has at most 256 characters): the blob the spec stages it as."""
        upload = self.given.entry.file
        if upload is None:
            return None
        account = staging_account(ctx, self.given.staging)
        name = staged_blob_name(ctx.pipeline, upload.source, self.given.content["source_sha256"])
        staged = blob_id(account, STAGING_CONTAINER, name)
        return staged if len(staged) > Marks.Tag.VALUE_MAX else None

    def _mark(self, ctx: RunContext, vm: Any) -> None:
        """Tag the VM: this step ran with this fingerprint (what `check` looks for)."""
        raw = read_vm(ctx, vm.group, vm.name)
        tags = {**(tags_of(raw) if raw is not None else {}), self.mark_tag: ctx.fingerprint}
        set_tags(ctx, vm.group, vm.name, tags)

    def apply(self, ctx: RunContext) -> CustomizeOutputs | None:
        from batchimage.steps.cleanup_build import after_failure

        vm = ctx.output(CreateVm)
        try:
            if self.given.entry.action == "restart":
                self._restart(ctx, vm)
                self._mark(ctx, vm)
                return None
            result = self._run(ctx, vm)
        except StepFailedError:
            raise
        except GuestGone as exc:
            note = after_failure(ctx, exc)
            raise StepFailedError(
                self.key,
                f"{self.label}: {exc}",
                resource=f"run command {self.command} on VM {vm.name}",
                hint="a customize script must not stop the guest agent or shut the VM down "
                "(waagent -deprovision, shutdown, poweroff: generalize deprovisions at the end, "
                "and a `restart` step reboots); change the spec, then delete the build VM "
                f"(batchimage destroy) and run apply again. Meanwhile {note}",
            ) from exc
        except Exception as exc:
            after_failure(ctx, exc)
            raise
        if not result.succeeded:
            message = (
                f"{self.label} failed in {vm.name}: state {result.state}, exit code "
                f"{result.exit_code}\n{result.tail()}"
            )
            note = after_failure(ctx, None)
            raise StepFailedError(
                self.key,
                message,
                resource=f"run command {self.command} on VM {vm.name}",
                hint="fix the script in the spec, then run apply again; the steps before it "
                f"are not repeated. Meanwhile {note}",
            )
        if result.id is None:  # action run command: nothing to observe later but a mark
            self._mark(ctx, vm)
            return None
        return self._outputs(ctx, vm, result)  # as read once it ended

    def _run(self, ctx: RunContext, vm: Any) -> RunCommandResult:
        given = self.given
        entry = self.given.entry
        env = dict(entry.env)
        secret_env = {k: ctx.secret(v).get_secret_value() for k, v in entry.secret_env.items()}
        extra_tags: dict[str, str] = {}
        if entry.file is not None and self.stage is not None:
            staged = ctx.output(self.stage)  # staged while the VM was built
            [ref] = staged.resources
            minutes = self.given.timeout_s // 60 + 15
            url = read_sas_url(
                ctx.clients, staged.account, STAGING_CONTAINER, staged.blob, minutes=minutes
            )
            sha = self.given.content["source_sha256"]
            script = fetch_script(given.os_type, entry.file.destination, sha)
            secret_env[FETCH_URL] = url  # a protected parameter, not script text
            if len(ref.id) <= Marks.Tag.VALUE_MAX:  # else `check` finds it from the spec
                extra_tags[Marks.Tag.STAGED] = ref.id
        elif entry.action in ("shell", "powershell"):
            script = getattr(entry, entry.action)
        else:
            script = getattr(entry, entry.action).read_text(encoding="utf-8")
        ctx.say(f"in VM {vm.name}")
        note = getattr(ctx.clients.profile, "script_note", None)
        if note and entry.action != "file":  # a file's fetch is checked, even there
            ctx.say(note, notice=True)
        return run(
            ctx,
            vm.group,
            vm.name,
            self.command,
            script,
            os_type=given.os_type,
            location=given.location,
            tags=resource_tags(ctx, given.tags, None, **extra_tags),
            env=env,
            secret_env=secret_env,
            timeout_s=self.given.timeout_s,
        )

    def _restart(self, ctx: RunContext, vm: Any) -> None:
        guest.restart(ctx, vm.group, vm.name, timeout_s=self.given.timeout_s)

        def ready() -> bool | None:
            found = read_vm(ctx, vm.group, vm.name)
            if found is None:
                return None
            running = power_state(found) == "running"
            return True if running and agent_ready(found) else None

        ctx.poll(
            ready,
            f"the guest agent of {vm.name} to be ready",
            interval_s=poll_interval(ctx, 5),
            timeout_s=self.given.timeout_s,
        )

    def describe(self) -> str:
        return self.label

    def input_words(self, name: str) -> str | None:
        if name == "content":
            return CONTENT_WORDS.get(self.given.entry.action, "the step")
        return {"timeout_s": "the time limit"}.get(name)

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        return runs_again(CreateVm.key, changing, "runs on")
