"""Step `customize.<i>.stage`: the local file of a `file` customize entry staged in blob
storage (once per content: the blob is named after its SHA-256), for customize.<i> to fetch
in the guest. It needs nothing of the build VM, so it runs while the VM is built: it is
what customize.<i>'s apply needs (`apply_needs`, so it runs only when that step applies),
and `eager` (started as soon as customize.<i> is wanted, not once its check found it must
run). Its fingerprint hashes the file's name and content; it adds nothing to
customize.<i>'s (which hashes the same content itself).

Cleanup deletes the staged blob with the build (it finds it by its metadata marks)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from batchimage.azure.arm import BLOB
from batchimage.azure.blobs import StorageAccount
from batchimage.azure.staging import find_staged, stage_file
from batchimage.core.errors import AzureError
from batchimage.core.refs import ResourceRef
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.run_preflight import RunPreflight
from batchimage.steps.staging import StagingPlaces, staging_account
from batchimage.steps.verbs import Verb


class StagedOutputs(Outputs):
    """Where the file is staged: the account and the blob's name in the staging container
    (the blob itself is in `resources`)."""

    account: StorageAccount
    blob: str


class StageInputs(StepInputs):
    """The file's name and SHA-256 (hashed: they name the blob); read, not hashed: the
    file's path, where files are staged."""

    file: str
    sha256: str
    source: Path = Field(exclude=True)
    staging: StagingPlaces = Field(exclude=True)


class StageFile(DeletesCreated, Step[StagedOutputs]):
    """The file of customize entry `index`, staged for the build VM."""

    given: StageInputs

    kind = "stage_file"
    verb = Verb("stage", "staging", "staged", "created")
    eager = True
    depends_on = (RunPreflight,)

    def __init__(self, index: int, source: Path, sha256: str, staging: StagingPlaces) -> None:
        """The file `source` (SHA-256 `sha256`) of customize entry `index`, staged in one
        of `staging`'s accounts."""
        self.given = StageInputs(file=source.name, sha256=sha256, source=source, staging=staging)
        self.key = f"customize.{index}.stage"
        self._account: StorageAccount | None = None

    def account(self, ctx: RunContext) -> StorageAccount:
        """The staging account, looked up once per run (the check, the apply and the check
        after it all ask)."""
        if self._account is None:
            self._account = staging_account(ctx, self.given.staging)
        return self._account

    def check(self, ctx: RunContext) -> StagedOutputs | None:
        given = self.given
        account = self.account(ctx)
        try:
            found = find_staged(ctx, account, given.source, given.sha256, pipeline=ctx.pipeline)
        except AzureError as err:
            if err.status != 403:
                raise
            # an identity that may not read the account's blobs (a reader's plan): it cannot
            # see the file staged, so the plan stages it; an apply by it fails there, by name
            return None
        if found is None:
            return None
        staged, run = found
        ref = ResourceRef(id=staged.id, kind=BLOB, created_by_run=run)
        return StagedOutputs(account=account, blob=staged.blob, resources=(ref,))

    def apply(self, ctx: RunContext) -> StagedOutputs | None:
        given = self.given
        account = self.account(ctx)
        stage_file(
            ctx, account, given.source, given.sha256, pipeline=ctx.pipeline, run_id=ctx.run_id
        )
        return None

    def describe(self) -> str:
        return f"stage {self.given.file}"

    def input_words(self, name: str) -> str | None:
        return {"sha256": "the file", "file": "the file's name"}.get(name)
