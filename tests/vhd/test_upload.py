"""Uploading fixed VHDs to page blobs on Azurite: sparse, exact, verified, idempotent."""

from __future__ import annotations

import base64
import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobClient, ContainerClient

from batchimage.azure.vhd import VhdChangedError, VhdError, VhdVerifyError
from batchimage.azure.vhd.costs import PutCosts
from batchimage.azure.vhd.digest import blob_digest, file_digest
from batchimage.azure.vhd.upload import UploadProgress, find_uploaded, upload_vhd
from batchimage.core.errors import PermanentAzureError
from batchimage.core.ownership import Marks
from tests.conftest import AzuriteAccount
from tests.vhd.conftest import BlobFactory, Recorder, written
from tests.vhd.images import (
    MIB,
    make_fixed_vhd,
    nonzero_runs,
    qemu_img,
    run,
    seeded_bytes,
    small_files_vhd,
    sparse_layout,
    write_raw,
)


def is_page_put(request: Any) -> bool:
    """True for a Put Page request."""
    return request.method == "PUT" and "comp=page" in request.url.split("?", 1)[-1].split("&")


def damaged(body: Any) -> bytes:
    """`body` with its first byte flipped: what a bit error on the way would deliver."""
    data = bytearray(body)
    data[0] ^= 0xFF
    return bytes(data)


@pytest.fixture
def sparse_vhd(tmp_path: Path) -> Path:
    return make_fixed_vhd(tmp_path / "sparse.vhd", 9 * MIB, sparse_layout())


def test_sparse_upload_sends_only_non_zero_pages(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    recorder = Recorder()
    blob = make_blob(recorder=recorder)
    result = upload_vhd(sparse_vhd, blob, workers=3, zero_bound=0.0)

    assert blob.download_blob().readall() == sparse_vhd.read_bytes()
    expected = nonzero_runs(sparse_vhd)
    data = sum(end - start for start, end in expected)
    assert written(blob) == expected  # nothing written where the file is zero
    assert (result.data_bytes, result.bytes_sent, recorder.page_bytes) == (data, data, data)
    assert result.zero_bytes_skipped == 9 * MIB + 512 - data
    assert result.requests == len(recorder.page_puts)
    assert result.digest == file_digest(sparse_vhd) == blob_digest(blob, result.size)
    assert result.size == blob.get_blob_properties().size == 9 * MIB + 512
    assert not (result.resumed or result.restarted or result.skipped_upload)
    metadata = blob.get_blob_properties().metadata
    assert metadata[Marks.Blob.UPLOAD_STATUS] == "complete"
    assert metadata[Marks.Blob.DIGEST] == result.digest
    assert result.direct_requests == result.requests > 0 and not result.direct_off


def test_joining_small_gaps_stays_within_the_bound(tmp_path: Path, make_blob: BlobFactory) -> None:
    # 200 runs of 7.5 KiB separated by 512-byte zero gaps (each gap is 6.7 % of a run)
    blocks = [(i * 8192, seeded_bytes(i, 7680)) for i in range(200)]
    path = make_fixed_vhd(tmp_path / "tails.vhd", 2 * MIB, blocks)
    recorder = Recorder()
    blob = make_blob(recorder=recorder)
    result = upload_vhd(path, blob, zero_bound=0.045)
    assert blob.download_blob().readall() == path.read_bytes()
    data = sum(end - start for start, end in nonzero_runs(path))
    assert data < result.bytes_sent <= 1.05 * data
    assert len(recorder.page_puts) < 200 / 2  # far fewer requests than runs
    ranges = written(blob)
    assert sum(end - start for start, end in ranges) == result.bytes_sent
    assert ranges[0] == (0, 135 * 8192 + 7680)  # bank 4.5 % x 1.5 MB = 135 gaps of 512 bytes


def test_a_fragmented_file_system_takes_fewer_requests_than_runs(
    tmp_path: Path, make_blob: BlobFactory
) -> None:
    path = small_files_vhd(tmp_path / "files.vhd", tmp_path, files=400)
    runs = nonzero_runs(path)
    data = sum(end - start for start, end in runs)
    recorder = Recorder()
    blob = make_blob(recorder=recorder)
    result = upload_vhd(path, blob, workers=3)
    assert blob.download_blob().readall() == path.read_bytes()
    assert result.digest == file_digest(path)
    # gaps up to 1 KiB are worth joining on any link; what the puts measured may add more
    assert len(recorder.page_puts) == result.requests < len(runs) - 50
    assert data < result.bytes_sent == recorder.page_bytes <= 1.10 * data
    assert all(end - start <= 4 * MIB for start, end in recorder.page_ranges)
    assert sum(end - start for start, end in written(blob)) == result.data_bytes
    assert result.costs is not None and result.costs.samples == result.requests


def test_a_slower_target_is_sent_fewer_requests(tmp_path: Path, make_blob: BlobFactory) -> None:
    path = small_files_vhd(tmp_path / "files.vhd", tmp_path, files=400)
    counts = {}
    for name, costs in (("near", PutCosts.known(0.0001, 10e6)), ("far", PutCosts.known(0.1, 10e6))):
        blob = make_blob(f"{name}.vhd")
        counts[name] = upload_vhd(path, blob, zero_bound=1.0, costs=costs).requests
        assert blob.download_blob().readall() == path.read_bytes()
    assert counts["far"] < counts["near"] / 2


def test_dense_disk_round_trips(tmp_path: Path, make_blob: BlobFactory) -> None:
    path = make_fixed_vhd(tmp_path / "dense.vhd", 5 * MIB, [(0, seeded_bytes(9, 5 * MIB))])
    blob = make_blob()
    result = upload_vhd(path, blob, workers=2)
    assert blob.download_blob().readall() == path.read_bytes()
    assert result.bytes_sent == result.data_bytes == 5 * MIB + 512


def test_qemu_made_vhd_round_trips(tmp_path: Path, make_blob: BlobFactory) -> None:
    qemu = qemu_img()
    raw = write_raw(tmp_path / "disk.raw", 7 * MIB, sparse_layout()[:3])
    path = tmp_path / "disk.vhd"
    run(qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size", raw, path)
    blob = make_blob()
    result = upload_vhd(path, blob)
    assert blob.download_blob().readall() == path.read_bytes()
    assert result.digest == file_digest(path)


def test_second_upload_writes_nothing(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    first = upload_vhd(sparse_vhd, make_blob())
    recorder = Recorder()
    again = upload_vhd(sparse_vhd, make_blob(recorder=recorder))
    assert recorder.writes == []
    assert again.skipped_upload and again.bytes_sent == 0 and again.requests == 0
    assert (again.digest, again.data_bytes, again.etag) == (
        first.digest,
        first.data_bytes,
        first.etag,
    )


def test_readback_checks_an_existing_blob(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    blob = make_blob()
    result = upload_vhd(sparse_vhd, blob, readback=True)
    assert result.verified == "readback"
    again = upload_vhd(sparse_vhd, make_blob(), readback=True)
    assert again.skipped_upload and again.verified == "readback"
    blob.upload_page(b"\xee" * 512, 6 * MIB + 512, 512)  # someone alters the blob
    assert find_uploaded(sparse_vhd, blob) is not None  # metadata alone cannot tell
    assert find_uploaded(sparse_vhd, blob, readback=True) is None
    fixed = upload_vhd(sparse_vhd, make_blob(), readback=True)
    assert fixed.restarted and not fixed.skipped_upload
    assert blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_find_uploaded_only_reads(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    recorder = Recorder()
    blob = make_blob(recorder=recorder)
    assert find_uploaded(sparse_vhd, blob) is None  # nothing there yet
    done = upload_vhd(sparse_vhd, make_blob())
    found = find_uploaded(sparse_vhd, blob, readback=True)
    assert found is not None and found.skipped_upload and found.verified == "readback"
    assert (found.digest, found.data_bytes, found.etag) == (done.digest, done.data_bytes, done.etag)
    assert recorder.writes == []
    os.utime(sparse_vhd, ns=(5, 5))  # the file changed (as far as anyone can tell)
    assert find_uploaded(sparse_vhd, blob) is None


def test_changed_file_starts_the_blob_over(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    upload_vhd(sparse_vhd, make_blob())
    with sparse_vhd.open("r+b") as handle:
        handle.seek(2 * MIB)
        handle.write(b"new data")
    os.utime(sparse_vhd, ns=(1, 1))
    blob = make_blob()
    result = upload_vhd(sparse_vhd, blob)
    assert result.restarted and not result.skipped_upload
    assert blob.download_blob().readall() == sparse_vhd.read_bytes()
    assert result.digest == file_digest(sparse_vhd)


def test_file_modified_during_upload_fails_then_restarts(
    sparse_vhd: Path, make_blob: BlobFactory
) -> None:
    def touch(request: Any) -> None:
        if is_page_put(request):
            os.utime(sparse_vhd, ns=(2, 2))

    with pytest.raises(VhdChangedError, match="modified during the upload"):
        upload_vhd(sparse_vhd, make_blob(recorder=Recorder(before=touch)))
    blob = make_blob()
    result = upload_vhd(sparse_vhd, blob)
    assert result.restarted and blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_blob_not_made_by_us_is_not_overwritten(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    blob = make_blob()
    blob.upload_blob(b"somebody else's data")
    with pytest.raises(VhdError, match="not uploaded by batchimage"):
        upload_vhd(sparse_vhd, blob)
    assert blob.download_blob().readall() == b"somebody else's data"
    result = upload_vhd(sparse_vhd, blob, overwrite=True)
    assert result.restarted and blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_progress_reports_reach_the_end(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    seen: list[UploadProgress] = []
    result = upload_vhd(sparse_vhd, make_blob(), workers=1, progress=seen.append)
    final = seen[-1]
    assert (final.done, final.total) == (result.size, result.size)
    assert final.sent == result.bytes_sent
    assert final.zero_skipped == result.zero_bytes_skipped
    assert all(a.sent <= b.sent and a.done <= b.done for a, b in itertools.pairwise(seen))
    assert final.rate > 0


def test_content_md5_is_sent_when_asked(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    md5s: list[str | None] = []

    def note(request: Any) -> None:
        if is_page_put(request):
            md5s.append(request.headers.get("Content-MD5"))

    upload_vhd(sparse_vhd, make_blob(recorder=Recorder(before=note)), content_md5=True)
    assert md5s and all(md5s)


def test_a_corrupted_request_is_resent_once(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    spoiled: list[str] = []

    def spoil_first(request: Any) -> None:
        if is_page_put(request) and not spoiled:
            spoiled.append(request.url)
            request.body = damaged(request.body)

    blob = make_blob(recorder=Recorder(before=spoil_first))
    result = upload_vhd(sparse_vhd, blob, content_md5=True)
    assert spoiled and blob.download_blob().readall() == sparse_vhd.read_bytes()
    # the damaged put was sent again through the SDK; the direct path served the others
    assert result.direct_requests == result.requests - 1 and not result.direct_off


def test_a_request_corrupted_twice_fails_loudly(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    def spoil(request: Any) -> None:
        if is_page_put(request):
            request.body = damaged(request.body)

    with pytest.raises(VhdVerifyError, match="Md5Mismatch"):
        upload_vhd(sparse_vhd, make_blob(recorder=Recorder(before=spoil)), content_md5=True)


def test_missing_container_is_a_permanent_azure_error(
    sparse_vhd: Path, azurite: AzuriteAccount, container: ContainerClient
) -> None:
    blob = BlobClient(
        azurite.blob_endpoint,
        "no-such-container",
        "disk.vhd",
        credential=azurite.credential,
        connection_verify=azurite.ca_bundle,
    )
    with pytest.raises(PermanentAzureError) as caught:
        upload_vhd(sparse_vhd, blob)
    assert caught.value.code == "ContainerNotFound" and caught.value.status == 404


def test_wrong_key_is_a_permanent_azure_error(sparse_vhd: Path, azurite: AzuriteAccount) -> None:
    blob = BlobClient(
        azurite.blob_endpoint,
        "anything",
        "disk.vhd",
        credential={
            "account_name": azurite.name,
            "account_key": base64.b64encode(bytes(64)).decode(),
        },
        connection_verify=azurite.ca_bundle,
    )
    with pytest.raises(PermanentAzureError) as caught:
        upload_vhd(sparse_vhd, blob)
    # Azure says 403 AuthenticationFailed; Azurite says 400 InvalidAuthenticationInfo
    assert caught.value.code in {"AuthenticationFailed", "InvalidAuthenticationInfo"}


def test_invalid_file_is_refused_before_any_request(tmp_path: Path, make_blob: BlobFactory) -> None:
    path = write_raw(tmp_path / "disk.raw", MIB)
    recorder = Recorder()
    with pytest.raises(VhdError, match="raw disk image"):
        upload_vhd(path, make_blob(recorder=recorder))
    assert recorder.requests == []
