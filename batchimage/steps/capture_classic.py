"""Step `capture.classic`: the classic capture of an unmanaged-disk VM - the VM capture API
(`Save-AzureRmVMImage`) writes the generalized OS disk as a VHD into the `system` container
of the disk's storage account (`Microsoft.Compute/Images/<container>/<prefix>-osDisk.<id>.vhd`);
the gallery version is then made from that VHD."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from batchimage.azure.arm import BLOB
from batchimage.azure.blobs import blob_id, blob_service, require_account
from batchimage.azure.errors import azure_call
from batchimage.azure.guest import capture_vhds
from batchimage.core.ownership import Marks, blob_marks
from batchimage.core.refs import ResourceRef
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.generalize_vm import GeneralizeVm
from batchimage.steps.names import image_fingerprint
from batchimage.steps.resolve_image import BasePin, ResolveImage, base_mark, made_from
from batchimage.steps.run_preflight import RunPreflight

SYSTEM = "system"


class ClassicOutputs(Outputs):
    """The captured VHD (a page blob in the `system` container)."""

    vhd_url: str
    storage_account_id: str


class ClassicInputs(StepInputs):
    """The image's fingerprint, where the capture API writes (hashed); read, not hashed:
    the OS disk's storage account and group, the capture's time limit, the base's pin."""

    image: str
    container: str
    prefix: str
    account: str = Field(exclude=True)
    group: str = Field(exclude=True)
    timeout_s: int = Field(exclude=True)
    pin: BasePin = Field(exclude=True)


class CaptureClassic(DeletesCreated, Step[ClassicOutputs]):
    """VM capture API -> VHD in `system`; needs the generalized VM only when it must capture."""

    given: ClassicInputs

    kind = "capture_classic"
    key = "capture.classic"
    shown = ("vhd_url",)

    def __init__(self, spec: Any, generalize: GeneralizeVm) -> None:
        self.depends_on = (RunPreflight,)
        self.reads = (ResolveImage,)  # the exact base: the VHD must hold it
        self.apply_needs = (generalize,)
        image = image_fingerprint(spec)
        self.given = ClassicInputs(
            image=image,
            container=spec.name,
            prefix=f"{spec.name}-{image[:8]}",
            account=spec.image.build.os_disk.storage_account,
            group=spec.resource_group,
            timeout_s=spec.timeouts.capture_s,
            pin=BasePin.of(spec),
        )

    def _blob_prefix(self) -> str:
        return f"Microsoft.Compute/Images/{self.given.container}/{self.given.prefix}-osDisk."

    def check(self, ctx: RunContext) -> ClassicOutputs | None:
        account = require_account(ctx.clients, self.given.account, self.given.group)
        container = blob_service(ctx.clients, account).get_container_client(SYSTEM)
        with azure_call(f"list captured VHDs in {account.name}/{SYSTEM}"):
            if not container.exists():
                return None
            found = [
                b
                for b in container.list_blobs(
                    name_starts_with=self._blob_prefix(), include=["metadata"]
                )
                if b.name.endswith(".vhd")
                and made_from(ctx, self.given.pin, b.metadata, Marks.Blob.BASE)
            ]
        if not found:
            return None
        blob = sorted(found, key=lambda b: b.name)[-1]
        run = Marks.Blob.creator(blob.metadata, ctx.pipeline)
        return ClassicOutputs(
            vhd_url=account.blob_url(SYSTEM, blob.name),
            storage_account_id=account.id,
            resources=(
                ResourceRef(id=blob_id(account, SYSTEM, blob.name), kind=BLOB, created_by_run=run),
            ),
        )

    def apply(self, ctx: RunContext) -> ClassicOutputs | None:
        vm = ctx.output(GeneralizeVm)
        account = require_account(ctx.clients, self.given.account, self.given.group)
        container = blob_service(ctx.clients, account).get_container_client(SYSTEM)
        with azure_call(f"list captured VHDs in {account.name}/{SYSTEM}"):
            before = (
                {b.name for b in container.list_blobs(name_starts_with=self._blob_prefix())}
                if container.exists()
                else set()
            )
        ctx.say(
            f"capturing {vm.name} into {self.given.account}/{SYSTEM}/{self._blob_prefix()}*.vhd"
        )
        capture_vhds(
            ctx,
            vm.group,
            vm.name,
            prefix=self.given.prefix,
            container=self.given.container,
            timeout_s=self.given.timeout_s,
        )
        marks = blob_marks(ctx.pipeline, ctx.run_id, self.given.image)
        base = base_mark(ctx.output(ResolveImage))
        if base is not None:
            marks[Marks.Blob.BASE] = base
        with azure_call(f"tag captured VHD in {account.name}/{SYSTEM}"):
            for blob in container.list_blobs(
                name_starts_with=self._blob_prefix(), include=["metadata"]
            ):
                if blob.name in before:  # an earlier capture (of another base): as it is
                    continue
                meta = {**(blob.metadata or {}), **marks}
                container.get_blob_client(blob.name).set_blob_metadata(meta)
        return None

    def describe(self) -> str:
        return f"capture VHDs to {self.given.account}/{SYSTEM}/{self._blob_prefix()}*.vhd (classic)"
