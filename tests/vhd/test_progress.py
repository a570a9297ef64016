"""The rich progress bar adapter and its text."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from batchimage.azure.vhd.progress import UploadBar, describe, human_bytes, human_seconds
from batchimage.azure.vhd.upload import UploadProgress, upload_vhd
from tests.vhd.conftest import BlobFactory
from tests.vhd.images import MIB, make_fixed_vhd, sparse_layout


def test_text_helpers() -> None:
    assert human_bytes(12) == "12 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * MIB) == "3.0 MiB"
    assert human_seconds(None) == "-:--:--"
    assert human_seconds(3725.4) == "1:02:05"
    line = describe(
        UploadProgress(
            total=10 * MIB, done=5 * MIB, sent=2 * MIB, zero_skipped=3 * MIB,
            already_present=MIB, elapsed=2.0, eta=4.0,
        )
    )  # fmt: skip
    assert line == (
        "sent 2.0 MiB (1.0 MiB/s), zero skipped 3.0 MiB, already there 1.0 MiB, ETA 0:00:04"
    )


def test_bar_shows_a_real_upload(tmp_path: Path, make_blob: BlobFactory) -> None:
    path = make_fixed_vhd(tmp_path / "disk.vhd", 9 * MIB, sparse_layout())
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    with UploadBar("disk.vhd", console=console) as bar:
        result = upload_vhd(path, make_blob(), progress=bar)
    text = out.getvalue()
    assert "disk.vhd" in text and "100%" in text
    assert f"zero skipped {human_bytes(result.zero_bytes_skipped)}" in text
