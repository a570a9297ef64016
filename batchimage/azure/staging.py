"""Stage a local file for the build VM: upload it to a blob (once per content), hand the guest
a short-lived read SAS, and the script that fetches it and checks its SHA-256.

    staged = stage_file(calls, account, path, sha256, pipeline="demo", run_id=run)
                                                       # blob id + URL (no SAS)
    found = find_staged(calls, account, path, sha256, pipeline="demo")   # read-only
    url = read_sas_url(clients, account, STAGING_CONTAINER, staged.blob, minutes=40)
    script = fetch_script("linux", "/opt/x", sha256)   # no secret in it
    run(..., script, secret_env={FETCH_URL: url})       # the SAS: a protected parameter

The SAS never appears in the script text (which anyone with Reader on the VM can read back
from the run command resource): it travels as the protected parameter `FETCH_URL`, which
Azure hands to the guest and never returns. On Linux the script reads it from the
environment variable the handler sets; on Windows from `$env:` (the run command's
`param()` prelude copies the named parameter there).

Which account stages files is the pipeline's choice (`batchimage.steps.staging`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchimage.azure.blobs import (
    StorageAccount,
    blob_id,
    blob_service,
    ensure_container,
)
from batchimage.azure.errors import azure_call
from batchimage.core.ownership import STAGING_CONTAINER, Marks, blob_marks

if TYPE_CHECKING:
    from batchimage.azure.calls import Calls


@dataclass(frozen=True)
class StagedFile:
    """A staged copy of a local file."""

    blob: str
    id: str
    url: str


def staged_blob_name(pipeline: str, path: Path, sha256: str) -> str:
    """The blob a file's content is staged as (content-addressed: same bytes, same blob)."""
    return f"{pipeline}/{sha256[:16]}/{path.name}"


def _staged(
    calls: Calls, account: StorageAccount, path: Path, sha256: str, pipeline: str
) -> tuple[Any, Any, StagedFile]:
    """The staging container's client, the client of the blob `path`'s content is staged
    as, and where that is."""
    name = staged_blob_name(pipeline, path, sha256)
    container = blob_service(calls.clients, account).get_container_client(STAGING_CONTAINER)
    blob = container.get_blob_client(name)
    staged = StagedFile(blob=name, id=blob_id(account, STAGING_CONTAINER, name), url=blob.url)
    return container, blob, staged


def _metadata(blob: Any) -> dict[str, str] | None:
    """The blob's metadata; None when there is no such blob (or no container yet)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return dict(blob.get_blob_properties().metadata or {})
    except ResourceNotFoundError:
        return None


def stage_file(
    calls: Calls, account: StorageAccount, path: Path, sha256: str, *, pipeline: str, run_id: str
) -> StagedFile:
    """Upload `path` unless a blob with its SHA-256 is already staged; returns where it is.
    The blob's metadata names `pipeline` and the run that staged it (cleanup finds it so)."""
    container, blob, staged = _staged(calls, account, path, sha256, pipeline)
    marks = {Marks.Blob.STAGED_SHA256: sha256, **blob_marks(pipeline, run_id)}
    with azure_call(f"stage {path.name} in {account.name}/{STAGING_CONTAINER}"):
        ensure_container(container)
        metadata = _metadata(blob) or {}
        if metadata.get(Marks.Blob.STAGED_SHA256) != sha256:
            calls.say(f"staging {path.name} ({path.stat().st_size} bytes) in {account.name}")
            with open(path, "rb") as handle:
                blob.upload_blob(handle, overwrite=True, metadata=marks)
        elif Marks.Blob.creator(metadata, pipeline) is None:  # staged before runs were marked
            blob.set_blob_metadata({**metadata, **marks})
    return staged


def find_staged(
    calls: Calls, account: StorageAccount, path: Path, sha256: str, *, pipeline: str
) -> tuple[StagedFile, str | None] | None:
    """The staged copy of `path` with this SHA-256 (read-only), and the run of `pipeline`
    that staged it (None: not marked as the pipeline's); None when there is none."""
    _, blob, staged = _staged(calls, account, path, sha256, pipeline)
    with azure_call(f"read staged {path.name} in {account.name}/{STAGING_CONTAINER}"):
        metadata = _metadata(blob)
    if metadata is None or metadata.get(Marks.Blob.STAGED_SHA256) != sha256:
        return None
    return staged, Marks.Blob.creator(metadata, pipeline)


FETCH_URL = "BATCHIMAGE_FETCH_URL"  # the protected parameter holding the read SAS URL


def fetch_script(os_type: str, destination: str, sha256: str) -> str:
    """A guest script that downloads the URL in parameter `FETCH_URL` to `destination` and
    checks its SHA-256; the script holds no secret."""
    if os_type == "windows":
        dest = destination.replace("'", "''")
        return "\n".join(
            [
                "$ErrorActionPreference = 'Stop'",
                f"$folder = Split-Path -Parent '{dest}'",
                "New-Item -ItemType Directory -Force -Path $folder | Out-Null",
                f"Invoke-WebRequest -UseBasicParsing -Uri $env:{FETCH_URL} -OutFile '{dest}'",
                f"$hash = (Get-FileHash -Algorithm SHA256 -Path '{dest}').Hash.ToLower()",
                f"if ($hash -ne '{sha256}') {{ Remove-Item '{dest}'; "
                f'Write-Error "checksum mismatch for {dest}: $hash"; exit 3 }}',
                f"Write-Output 'fetched {dest} (sha256 {sha256})'",
            ]
        )
    dest = shlex.quote(destination)
    folder = shlex.quote(destination.rsplit("/", 1)[0] or "/")
    return "\n".join(
        [
            "set -eu",
            f"mkdir -p {folder}",
            f'curl -fsS --retry 5 --retry-delay 2 -o {dest} "${FETCH_URL}"',
            f"echo '{sha256}  '{dest} | sha256sum -c - >/dev/null "
            f"|| {{ echo 'checksum mismatch for '{dest} >&2; rm -f {dest}; exit 3; }}",
            f"echo 'fetched '{dest}' (sha256 {sha256})'",
        ]
    )
