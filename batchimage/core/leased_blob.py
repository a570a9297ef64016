"""The state blob as the blob state backend uses it: a `LeasedBlob` (the blob, its lease and
its `.bak` copy) and the `BlobFailure` kinds its methods raise. The backend
(`batchimage.state.blob`) holds the protocol against it; the Azure edge
(`batchimage.azure.state_store`) implements it with the storage SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class BlobFailure(Exception):
    """A call to the blob service failed: the service's error code and HTTP status when it
    answered, and the first line of what it said (`str()`); `kind` names the SDK's error."""

    def __init__(
        self, detail: str, *, code: str | None = None, status: int | None = None, kind: str = ""
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.kind = kind or type(self).__name__


class BlobMissing(BlobFailure):
    """The blob (or its container) does not exist."""


class LeaseTaken(BlobFailure):
    """The lease could not be acquired: another lease is on the blob (or being broken)."""


class LeaseGone(BlobFailure):
    """The lease cannot be renewed any more: it was broken, or another run holds the blob."""


class WriteRefused(BlobFailure):
    """A write was refused: the lease is not ours, or the blob changed since the ETag."""


class Lease(Protocol):
    """A lease held on the state blob (given back to the blob with every write under it)."""

    def renew(self) -> None:
        """Renew the lease for its duration again (BlobFailure, or LeaseGone when lost)."""
        ...

    def release(self) -> None:
        """Give the lease up."""
        ...


@dataclass(frozen=True)
class BlobInfo:
    """What the blob's properties say: whether a lease is on it (held or being broken),
    and its metadata."""

    leased: bool
    metadata: dict[str, str]


class LeasedBlob(Protocol):
    """The state blob with its lease and its `.bak` copy, as the backend uses them; every
    method raises BlobFailure (or one of its kinds) for what the service refused."""

    where: str  # the blob's URL
    backup_where: str  # the URL of `<blob>.bak`

    def create(self) -> None:
        """Make the container, and the blob empty, unless they exist."""
        ...

    def acquire(self, seconds: int) -> Lease:
        """A new lease on the blob for `seconds` (LeaseTaken when another holds one)."""
        ...

    def break_lease(self) -> None:
        """Break whatever lease is on the blob, at once."""
        ...

    def info(self) -> BlobInfo:
        """The blob's lease and metadata (BlobMissing when there is no blob)."""
        ...

    def set_metadata(self, metadata: dict[str, str], lease: Lease) -> str | None:
        """Replace the blob's metadata under `lease`; its new ETag."""
        ...

    def download(self) -> tuple[bytes, str | None]:
        """The blob's bytes and ETag (BlobMissing when there is no blob)."""
        ...

    def upload(
        self, data: bytes, *, lease: Lease | None, etag: str | None, metadata: dict[str, str]
    ) -> str | None:
        """Replace the blob with `data` and `metadata`, under `lease` when given, and only
        if it still has `etag` when given (WriteRefused otherwise); its new ETag."""
        ...

    def upload_backup(self, data: bytes) -> None:
        """Replace `<blob>.bak` with `data`."""
        ...
