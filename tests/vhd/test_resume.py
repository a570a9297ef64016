"""Interrupted uploads resume from the pages already on the blob, and never re-send them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from batchimage.azure.vhd import VhdChangedError, VhdVerifyError
from batchimage.azure.vhd.costs import PutCosts
from batchimage.azure.vhd.digest import file_digest
from batchimage.azure.vhd.upload import LOOKAHEAD, UploadProgress, find_uploaded, upload_vhd
from batchimage.core.ownership import Marks
from tests.conftest import AzuriteAccount
from tests.vhd.conftest import BlobFactory, Recorder, written
from tests.vhd.images import MIB, make_fixed_vhd, nonzero_runs, seeded_bytes

REPO = Path(__file__).resolve().parents[2]


class Stop(Exception):
    """Raised from a request hook to cut an upload short."""


def stop_after(puts: int) -> Recorder:
    """A recorder whose client fails every Put Page after the first `puts`."""
    count = [0]

    def maybe_stop(request: Any) -> None:
        if request.method == "PUT" and "comp=page" in request.url:
            count[0] += 1
            if count[0] > puts:
                raise Stop(f"stopped after {puts} puts")

    return Recorder(before=maybe_stop)


def overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """Bytes that ranges `a` and ranges `b` have in common."""
    return sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


@pytest.fixture
def many_runs_vhd(tmp_path: Path) -> Path:
    """A 12 MiB disk with 40 data runs of 64 KiB, 192 KiB apart (too far apart to merge)."""
    blocks = [(i * 256 * 1024 + 4096, seeded_bytes(i, 64 * 1024)) for i in range(40)]
    return make_fixed_vhd(tmp_path / "runs.vhd", 12 * MIB, blocks)


def data_bytes(path: Path) -> int:
    return sum(end - start for start, end in nonzero_runs(path))


def test_interrupted_upload_resumes_without_resending(
    many_runs_vhd: Path, make_blob: BlobFactory
) -> None:
    with pytest.raises(Stop):
        upload_vhd(many_runs_vhd, make_blob(recorder=stop_after(12)), workers=2)
    blob = make_blob()
    assert blob.get_blob_properties().metadata[Marks.Blob.UPLOAD_STATUS] == "uploading"
    assert find_uploaded(many_runs_vhd, blob) is None  # a partial upload is not done
    before = written(blob)
    present = sum(end - start for start, end in before)
    assert 0 < present < data_bytes(many_runs_vhd)

    recorder = Recorder()
    result = upload_vhd(many_runs_vhd, make_blob(recorder=recorder), workers=2)
    assert result.resumed and not result.restarted
    assert result.already_present_bytes == present
    assert result.bytes_sent == recorder.page_bytes == data_bytes(many_runs_vhd) - present
    assert overlap(recorder.page_ranges, before) == 0  # nothing already there was sent again
    assert blob.download_blob().readall() == many_runs_vhd.read_bytes()
    assert result.digest == file_digest(many_runs_vhd)


def test_resume_keeps_the_layout_of_the_first_run(
    many_runs_vhd: Path, make_blob: BlobFactory
) -> None:
    with pytest.raises(Stop):
        upload_vhd(many_runs_vhd, make_blob(recorder=stop_after(5)), zero_bound=0.0)
    result = upload_vhd(many_runs_vhd, make_blob(), zero_bound=10.0)  # would merge all
    assert result.resumed
    assert result.data_bytes == data_bytes(many_runs_vhd)  # cut as the first run cut it


def test_a_resume_with_other_costs_keeps_the_joins_already_made(
    tmp_path: Path, make_blob: BlobFactory
) -> None:
    # 12 MiB of 14 KiB runs with 2 KiB zero gaps
    blocks = [(i * 16 * 1024, seeded_bytes(i, 14 * 1024)) for i in range(768)]
    path = make_fixed_vhd(tmp_path / "gaps.vhd", 12 * MIB, blocks)
    far = PutCosts.known(0.1, 10e6)  # joins every gap (1 MB would pay)
    with pytest.raises(Stop):
        upload_vhd(path, make_blob(recorder=stop_after(1)), workers=1, zero_bound=0.5, costs=far)
    blob = make_blob()
    before = written(blob)
    assert before == [(0, 4 * MIB - 2048)]  # the first block, in one put

    near = PutCosts.known(0.0001, 10e6)  # joins nothing wider than 1 KiB
    recorder = Recorder()
    result = upload_vhd(path, make_blob(recorder=recorder), workers=1, costs=near)
    assert result.resumed and overlap(recorder.page_ranges, before) == 0
    assert len(recorder.page_puts) == 2 * 256 + 1  # the other two blocks, one put per run; footer
    assert blob.download_blob().readall() == path.read_bytes()
    assert result.data_bytes == 4 * MIB - 2048 + 512 * 14 * 1024 + 512


def test_pages_written_by_someone_else_fail_verification_then_restart(
    many_runs_vhd: Path, make_blob: BlobFactory
) -> None:
    with pytest.raises(Stop):
        upload_vhd(many_runs_vhd, make_blob(recorder=stop_after(5)))
    blob = make_blob()
    blob.upload_page(b"\x55" * 512, 11 * MIB, 512)  # a page the file has as zeros
    with pytest.raises(VhdVerifyError, match="marked for a fresh upload"):
        upload_vhd(many_runs_vhd, make_blob())
    assert blob.get_blob_properties().metadata[Marks.Blob.UPLOAD_STATUS] == "invalid"
    result = upload_vhd(many_runs_vhd, make_blob())
    assert result.restarted and not result.resumed
    assert blob.download_blob().readall() == many_runs_vhd.read_bytes()


def test_file_changed_between_runs_restarts(many_runs_vhd: Path, make_blob: BlobFactory) -> None:
    with pytest.raises(Stop):
        upload_vhd(many_runs_vhd, make_blob(recorder=stop_after(5)))
    with many_runs_vhd.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"changed")
    result = upload_vhd(many_runs_vhd, make_blob())
    assert result.restarted and not result.resumed
    assert make_blob().download_blob().readall() == many_runs_vhd.read_bytes()


def test_killed_upload_resumes_without_resending(
    many_runs_vhd: Path,
    make_blob: BlobFactory,
    azurite: AzuriteAccount,
    container: ContainerClient,
) -> None:
    child = subprocess.Popen(
        [
            sys.executable, "-m", "tests.vhd.upload_child", azurite.blob_endpoint, azurite.name,
            azurite.key, azurite.ca_bundle, container.container_name, "disk.vhd",
            str(many_runs_vhd), "0.05",
        ],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert child.stdout is not None
    try:
        for line in child.stdout:
            if line.startswith("sent ") and int(line.split()[1]) >= 10 * 64 * 1024:
                break
        else:
            pytest.fail(f"the child ended before being killed: {child.stderr.read()}")  # type: ignore[union-attr]
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    blob = make_blob()
    assert blob.get_blob_properties().metadata[Marks.Blob.UPLOAD_STATUS] == "uploading"
    before = written(blob)
    present = sum(end - start for start, end in before)
    total = data_bytes(many_runs_vhd)
    assert 10 * 64 * 1024 <= present < total

    recorder = Recorder()
    result = upload_vhd(many_runs_vhd, make_blob(recorder=recorder))
    assert result.resumed
    assert result.bytes_sent == recorder.page_bytes == total - present
    assert overlap(recorder.page_ranges, before) == 0
    assert blob.download_blob().readall() == many_runs_vhd.read_bytes()
    assert result.digest == file_digest(many_runs_vhd)

    again = Recorder()
    assert upload_vhd(many_runs_vhd, make_blob(recorder=again)).skipped_upload
    assert again.writes == []


def test_progress_callback_can_cancel_and_the_next_run_resumes(
    many_runs_vhd: Path, make_blob: BlobFactory
) -> None:
    class Cancel(Exception):
        pass

    def cancel_midway(progress: UploadProgress) -> None:
        if progress.sent >= 8 * 64 * 1024:
            raise Cancel

    slow = Recorder(before=lambda request: time.sleep(0.01))
    with pytest.raises(Cancel):
        upload_vhd(many_runs_vhd, make_blob(recorder=slow), workers=1, progress=cancel_midway)
    blob = make_blob()
    before = written(blob)
    assert 0 < sum(end - start for start, end in before) < data_bytes(many_runs_vhd)
    recorder = Recorder()
    result = upload_vhd(many_runs_vhd, make_blob(recorder=recorder))
    assert result.resumed and overlap(recorder.page_ranges, before) == 0
    assert blob.download_blob().readall() == many_runs_vhd.read_bytes()


def test_file_cut_short_during_upload_is_reported(tmp_path: Path, make_blob: BlobFactory) -> None:
    blocks = [(i * 4 * MIB, seeded_bytes(i, 4096)) for i in range(12)]
    path = make_fixed_vhd(tmp_path / "long.vhd", 48 * MIB, blocks)
    # one worker: the blocks read before the first put ends fill its 1 + 2 + LOOKAHEAD buffers
    unread = 1 + 2 + LOOKAHEAD

    def cut(request: Any) -> None:
        if request.method == "PUT" and "comp=page" in request.url:
            with path.open("r+b") as handle:  # block `unread` is cut in half
                handle.truncate(unread * 4 * MIB + 2 * MIB)

    with pytest.raises(VhdChangedError, match=r"reading .* failed"):
        upload_vhd(path, make_blob(recorder=Recorder(before=cut)), workers=1)
