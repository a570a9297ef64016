"""Zero-page scanning and sparse-hole skipping, checked against naive versions."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from batchimage.azure.vhd.scan import BLOCK, PAGE, data_blocks, data_runs, is_zero


def naive_runs(buf: bytes) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for start in range(0, len(buf), PAGE):
        if buf[start : start + PAGE] != bytes(PAGE):
            if runs and runs[-1][1] == start:
                runs[-1] = (runs[-1][0], start + PAGE)
            else:
                runs.append((start, start + PAGE))
    return runs


@st.composite
def disk_blocks(draw: st.DrawFn) -> bytes:
    """A block of whole pages: stretches of zeros and of data, with stray zero bytes."""
    pages = draw(st.integers(min_value=1, max_value=96))
    buf = bytearray(pages * PAGE)
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        start = draw(st.integers(min_value=0, max_value=len(buf) - 1))
        size = draw(st.integers(min_value=1, max_value=3 * PAGE))
        fill = draw(st.sampled_from([b"\x01", b"\x00\x7f", b"\x00" * 600 + b"\x09"]))
        chunk = (fill * (size // len(fill) + 1))[:size]
        buf[start : start + size] = chunk[: len(buf) - start]
    return bytes(buf)


@given(disk_blocks())
@settings(max_examples=300)
def test_runs_are_exactly_the_non_zero_pages(buf: bytes) -> None:
    assert data_runs(buf, len(buf)) == naive_runs(buf)


def test_runs_on_large_blocks() -> None:
    buf = bytearray(BLOCK)
    buf[5 * PAGE + 3] = 1
    buf[BLOCK // 2 : BLOCK // 2 + 70 * PAGE] = os.urandom(70 * PAGE)
    buf[-1] = 9
    assert data_runs(buf, BLOCK) == naive_runs(bytes(buf))
    assert data_runs(bytes(BLOCK), BLOCK) == []
    dense = os.urandom(BLOCK)
    assert data_runs(dense, BLOCK) == [(0, BLOCK)]
    assert data_runs(dense, 3 * PAGE) == [(0, 3 * PAGE)]


def test_is_zero_for_sizes_that_are_not_powers_of_two() -> None:
    buf = bytearray(7 * PAGE)
    assert is_zero(buf, 7 * PAGE)
    buf[6 * PAGE + 511] = 1
    assert not is_zero(buf, 7 * PAGE)
    assert is_zero(buf, 6 * PAGE)


def test_data_blocks_skips_holes_of_sparse_files(tmp_path: Path) -> None:
    path = tmp_path / "sparse.img"
    size = 40 * BLOCK + PAGE
    with path.open("wb") as out:
        out.truncate(size)
        for offset in (3 * BLOCK + 10, 17 * BLOCK - 1, 40 * BLOCK):
            out.seek(offset)
            out.write(b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        blocks = list(data_blocks(fd, size))
    finally:
        os.close(fd)
    assert {3, 16, 40} <= set(blocks)  # every block with data is listed...
    assert blocks == sorted(set(blocks))
    assert len(blocks) < 12  # ...and (on file systems with holes) most holes are not


def test_data_blocks_of_a_dense_file_is_every_block(tmp_path: Path) -> None:
    path = tmp_path / "dense.img"
    path.write_bytes(b"\x01" * (2 * BLOCK + PAGE))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert list(data_blocks(fd, 2 * BLOCK + PAGE)) == [0, 1, 2]
    finally:
        os.close(fd)
