"""Step `upload_vhd`: a local fixed VHD (image.base.vhd_file) uploaded as a page blob -
only non-zero pages sent, resumable, verified (see batchimage.azure.vhd.upload); a blob already
holding this file, complete and verified, is not written again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from batchimage.azure.arm import BLOB
from batchimage.azure.blobs import blob_id, blob_service, ensure_container, require_account
from batchimage.azure.errors import azure_call
from batchimage.core.ownership import Marks, blob_marks
from batchimage.core.refs import ResourceRef
from batchimage.steps.base import RunContext, Step, StepInputs
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.pool_common import DriftOutputs
from batchimage.steps.run_preflight import RunPreflight


class UploadOutputs(DriftOutputs):
    """The uploaded VHD: what the gallery version is made from."""

    vhd_url: str
    storage_account_id: str
    size: int
    digest: str


class UploadInputs(StepInputs):
    """Where the VHD goes and which file it is (its size and sampled hash: hashed); read,
    not hashed: the file's path, the account's group, the upload's time limit."""

    account: str
    container: str
    blob: str
    size: int
    sample: str
    path: Path = Field(exclude=True)
    group: str = Field(exclude=True)
    timeout_s: int = Field(exclude=True)


class UploadVhd(DeletesCreated, Step[UploadOutputs]):
    """image.base.vhd_file into <storage_account>/<container>/<blob>."""

    given: UploadInputs

    kind = "upload_vhd"
    key = "upload_vhd"
    depends_on = (RunPreflight,)

    def __init__(self, spec: Any) -> None:
        from batchimage.azure.vhd.digest import Fingerprint

        vhd = spec.image.base.vhd_file
        path = Path(vhd.path)
        source = Fingerprint.of(path)
        self.given = UploadInputs(
            account=vhd.storage_account,
            container=vhd.container,
            blob=vhd.blob or f"{spec.name}-{source.sample[:12]}.vhd",
            size=source.size,
            sample=source.sample,
            path=path,
            group=vhd.resource_group or spec.resource_group,
            timeout_s=spec.timeouts.vhd_upload_s,
        )

    def check(self, ctx: RunContext) -> UploadOutputs | None:
        from batchimage.azure.vhd.upload import find_touched, find_uploaded

        account = require_account(ctx.clients, self.given.account, self.given.group)
        blob = blob_service(ctx.clients, account).get_blob_client(
            self.given.container, self.given.blob
        )
        drift = None
        done = find_uploaded(self.given.path, blob)
        if done is None:
            done = find_touched(self.given.path, blob)
            if done is None:
                return None
            drift = (
                f"{self.given.path.name} has another modification time than when it was uploaded: "
                f"apply compares its content digest with the blob's (no upload if equal)"
            )
        with azure_call(f"read {self.given.container}/{self.given.blob}"):
            meta = dict(blob.get_blob_properties().metadata or {})
        ref = ResourceRef(
            id=blob_id(account, self.given.container, self.given.blob),
            kind=BLOB,
            created_by_run=Marks.Blob.creator(meta, ctx.pipeline),
        )
        return UploadOutputs(
            vhd_url=account.blob_url(self.given.container, self.given.blob),
            storage_account_id=account.id,
            size=done.size,
            digest=done.digest,
            resources=(ref,),
            drift=drift,
            drift_action="update" if drift else None,
        )

    def apply(self, ctx: RunContext) -> UploadOutputs | None:
        from batchimage.azure.vhd.upload import upload_vhd

        account = require_account(ctx.clients, self.given.account, self.given.group)
        container = blob_service(ctx.clients, account).get_container_client(self.given.container)
        with azure_call(f"create container {self.given.container}"):
            ensure_container(container)
        blob = container.get_blob_client(self.given.blob)
        shown = [-1]

        def progress(p: Any) -> None:
            percent = int(p.done * 100 / p.total) if p.total else 100
            if percent // 5 != shown[0]:
                shown[0] = percent // 5
                ctx.say(
                    f"uploading {self.given.path.name}: {percent}% ({p.sent / 2**20:.0f} MiB sent, "
                    f"{p.zero_skipped / 2**20:.0f} MiB of zeros skipped)",
                    progress=percent,
                )

        result = upload_vhd(self.given.path, blob, progress=progress)
        with azure_call(f"mark {self.given.container}/{self.given.blob}"):
            meta = dict(blob.get_blob_properties().metadata or {})
            if Marks.Blob.creator(meta, ctx.pipeline) is None:
                meta.update(blob_marks(ctx.pipeline, ctx.run_id))
                blob.set_blob_metadata(meta)
        if result.direct_off and result.direct_requests < result.requests:
            ctx.say(f"puts went through the Azure SDK because {result.direct_off}")
        if result.skipped_upload:
            ctx.say(
                f"{self.given.path.name} is already in the blob (same content digest): nothing sent"
            )
        else:
            ctx.say(
                f"uploaded {self.given.path.name}: {result.bytes_sent / 2**20:.1f} MiB sent in "
                f"{result.requests} requests, {result.zero_bytes_skipped / 2**20:.1f} MiB of "
                f"zeros skipped"
            )
        return None

    def describe(self) -> str:
        g = self.given
        return f"upload {g.path.name} to {g.account}/{g.container}/{g.blob}"
