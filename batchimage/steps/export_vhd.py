"""Step `capture.vhd_export`: the image as a VHD page blob - read access granted on the
generalized OS disk (a short SAS), a server-side copy into the target container, waited on
with progress, access revoked (also when the copy fails), then the blob verified (page blob,
intact fixed-VHD footer, size). The classic flow copies the captured VHD instead."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from batchimage.azure.arm import BLOB, poll_interval, text
from batchimage.azure.blobs import (
    blob_client,
    blob_id,
    blob_service,
    ensure_container,
    read_sas_url,
    require_account,
    split_blob_url,
)
from batchimage.azure.disks import read_access
from batchimage.azure.errors import azure_call
from batchimage.azure.ids import parse_id
from batchimage.azure.vhdblob import inspect_vhd_blob
from batchimage.core.errors import PermanentAzureError
from batchimage.core.ownership import Marks, blob_marks
from batchimage.core.refs import ResourceRef
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.create_image_version import CreateImageVersion
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.names import image_fingerprint

GRANT_SECONDS = 3600


class ExportOutputs(Outputs):
    """The exported VHD (URL without SAS) and its size."""

    vhd_url: str
    size: int


class ExportInputs(StepInputs):
    """Where the VHD goes, its name or prefix, the image's fingerprint (hashed); read, not
    hashed: the account's group, the export's time limit."""

    account: str
    container: str
    name: str | None
    prefix: str
    image: str
    group: str = Field(exclude=True)
    timeout_s: int = Field(exclude=True)


class ExportVhd(DeletesCreated, Step[ExportOutputs]):
    """image.capture.vhd_export, named after the image version."""

    given: ExportInputs

    kind = "export_vhd"
    key = "capture.vhd_export"
    shown = ("vhd_url",)

    def __init__(self, spec: Any, version: CreateImageVersion, source: Step[Any]) -> None:
        """`source`: GeneralizeVm (managed OS disk) or CaptureClassic (captured VHD)."""
        self.depends_on = (version,)
        self.apply_needs = (source,)
        self.source = source
        export = spec.image.capture.vhd_export
        self.given = ExportInputs(
            account=export.storage_account,
            container=export.container,
            name=export.name,
            prefix=export.prefix or spec.name,
            image=image_fingerprint(spec),
            group=export.resource_group or spec.resource_group,
            timeout_s=spec.timeouts.vhd_export_s,
        )

    def blob_name(self, ctx: RunContext) -> str:
        """The exact name, or <prefix>-<image version>.vhd."""
        if self.given.name:
            return self.given.name
        return f"{self.given.prefix}-{ctx.output(CreateImageVersion).version}.vhd"

    def check(self, ctx: RunContext) -> ExportOutputs | None:
        account = require_account(ctx.clients, self.given.account, self.given.group)
        name = self.blob_name(ctx)
        blob = blob_client(ctx.clients, account, self.given.container, name)
        with azure_call(f"read {self.given.container}/{name}"):
            if not blob.exists():
                return None
            props = blob.get_blob_properties()
        meta = dict(props.metadata or {})
        if (
            meta.get(Marks.Blob.IMAGE) != self.given.image
            or meta.get(Marks.Blob.VERIFIED) != "true"
        ):
            return None
        size, problem = inspect_vhd_blob(blob)
        if problem:
            return None
        ref = ResourceRef(
            id=blob_id(account, self.given.container, name),
            kind=BLOB,
            created_by_run=Marks.Blob.creator(meta, ctx.pipeline),
        )
        return ExportOutputs(
            vhd_url=account.blob_url(self.given.container, name),
            size=size,
            resources=(ref,),
            observed_fingerprint=meta.get(Marks.Blob.FINGERPRINT),  # a lost state adopts it as done
        )

    def apply(self, ctx: RunContext) -> ExportOutputs | None:
        account = require_account(ctx.clients, self.given.account, self.given.group)
        name = self.blob_name(ctx)
        container = self.given.container
        box = blob_service(ctx.clients, account).get_container_client(container)
        with azure_call(f"create container {container}"):
            ensure_container(box)
        dest = box.get_blob_client(name)
        source = ctx.output(self.source)
        if getattr(source, "os_disk_id", None):
            self._copy_from_disk(ctx, source.os_disk_id, dest)
        else:
            self._copy_from_blob(ctx, source, dest, account)
        size, problem = inspect_vhd_blob(dest)
        if problem:
            raise PermanentAzureError(
                f"the exported VHD {container}/{name} failed verification: {problem}",
                code="VhdVerifyFailed",
            )
        with azure_call(f"mark {container}/{name} verified"):
            meta = dict(dest.get_blob_properties().metadata or {})
            meta.update(blob_marks(ctx.pipeline, ctx.run_id, self.given.image))
            meta[Marks.Blob.VERIFIED] = "true"
            meta[Marks.Blob.FINGERPRINT] = ctx.fingerprint
            dest.set_blob_metadata(meta)
        ctx.say(f"exported {size / 2**30:.1f} GiB VHD to {account.name}/{container}/{name}")
        return None

    def _copy_from_disk(self, ctx: RunContext, disk_id: str, dest: Any) -> None:
        p = parse_id(disk_id)
        with read_access(ctx, p["group"], p["name"], seconds=GRANT_SECONDS) as sas:
            self._copy(ctx, sas, dest)

    def _copy_from_blob(self, ctx: RunContext, source: Any, dest: Any, target: Any) -> None:
        url = getattr(source, "vhd_url", None)
        account_id = getattr(source, "storage_account_id", None)
        if not url or not account_id:
            raise PermanentAzureError("the VHD to export is unknown", code="MissingExportSource")
        if account_id.lower() == target.id.lower():
            # same account: our own authorization covers the source (Azure's Copy Blob rule)
            self._copy(ctx, url, dest)
            return
        parts = account_id.split("/")
        account = require_account(ctx.clients, parts[-1], parts[4])
        container, name = split_blob_url(account, url)
        minutes = self.given.timeout_s // 60 + 30
        self._copy(ctx, read_sas_url(ctx.clients, account, container, name, minutes=minutes), dest)

    def _copy(self, ctx: RunContext, source_url: str, dest: Any) -> None:
        marks = blob_marks(ctx.pipeline, ctx.run_id)
        with azure_call(f"start copy to {dest.blob_name}"):
            dest.start_copy_from_url(source_url, metadata=marks)
        shown = [-1]

        def copied() -> bool | None:
            with azure_call(f"read copy status of {dest.blob_name}"):
                copy = dest.get_blob_properties().copy
            status = text(copy.status or "").lower()
            if status == "pending":
                done, total = _progress(copy.progress)
                percent = int(done * 100 / total) if total else 0
                if percent != shown[0]:
                    shown[0] = percent
                    ctx.say(f"copying VHD: {percent}% of {total / 2**30:.1f} GiB", progress=percent)
                return None
            if status == "success":
                return True
            raise PermanentAzureError(
                f"the copy to {dest.blob_name} ended {status}: {copy.status_description or ''}",
                code="CopyFailed",
            )

        ctx.poll(
            copied,
            f"the VHD copy to {dest.blob_name}",
            interval_s=poll_interval(ctx, 10),
            timeout_s=self.given.timeout_s,
        )

    def describe(self) -> str:
        return f"export VHD to {self.given.account}/{self.given.container}"


def _progress(text: Any) -> tuple[int, int]:
    """`"123/456"` -> (123, 456)."""
    try:
        done, total = str(text).split("/", 1)
        return int(done), int(total)
    except ValueError:
        return 0, 0
