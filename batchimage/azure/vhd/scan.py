"""Find what must be sent: the non-zero 512-byte pages of a disk, grouped into put ranges.

A page blob reads as zeros wherever nothing was written, so only non-zero pages need
sending. The file is read in 4 MiB blocks (the largest Put Page); holes of a sparse
local file are skipped without reading (SEEK_DATA), an all-zero block costs one memcmp,
and inside a block the zero pages are found with `bytes.find` plus galloping compares. Which
of the zero gaps between runs are worth sending anyway is `joins`' business.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

PAGE = 512
BLOCK = 4 << 20  # Put Page accepts at most 4 MiB per request
_ZERO_PAGE = bytes(PAGE)
_ZEROS = {PAGE << n: bytes(PAGE << n) for n in range(14)}  # 512 B .. 4 MiB


def is_zero(buf: bytes | bytearray | memoryview, length: int) -> bool:
    """True if the first `length` bytes (a multiple of 512, at most 4 MiB) of `buf` are zero."""
    zeros = _ZEROS.get(length)
    if zeros is not None:
        return (buf if len(buf) == length else buf[:length]) == zeros  # memcmp, no copy
    return all(buf[start : start + size] == _ZEROS[size] for start, size in _pow2_pieces(length))


def _pow2_pieces(length: int) -> Iterator[tuple[int, int]]:
    start = 0
    for size in sorted(_ZEROS, reverse=True):
        while length - start >= size:
            yield start, size
            start += size


def _zero_end(buf: bytes | bytearray, start: int, end: int) -> int:
    """The first page offset in [start, end) whose page is not all zero, or `end`."""
    pos, size = start, PAGE
    while pos < end:
        while pos + size > end:
            size //= 2
        if buf[pos : pos + size] == _ZEROS[size]:
            pos += size
            size = min(size * 2, BLOCK)
        elif size == PAGE:
            return pos
        else:
            size //= 2
    return end


def data_runs(buf: bytes | bytearray, length: int) -> list[tuple[int, int]]:
    """The maximal runs `(start, end)` of non-zero pages in `buf[:length]` (length % 512 == 0)."""
    runs: list[tuple[int, int]] = []
    run_start = 0
    search = 0
    while True:
        hit = buf.find(_ZERO_PAGE, search, length)
        if hit < 0:
            break
        page = -(-hit // PAGE) * PAGE  # first page boundary inside the zero stretch
        if page + PAGE > length:
            break
        if buf[page : page + PAGE] != _ZERO_PAGE:
            search = page + 1
            continue
        end = _zero_end(buf, page, length)
        if page > run_start:
            runs.append((run_start, page))
        run_start = search = end
    if run_start < length:
        runs.append((run_start, length))
    return runs


def data_blocks(fd: int, size: int) -> Iterator[int]:
    """Indexes of the 4 MiB blocks of the file that may hold data (sparse holes skipped)."""
    count = -(-size // BLOCK)
    index = 0
    while index < count:
        try:
            data_at = os.lseek(fd, index * BLOCK, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole from here to the end
                return
            yield from range(index, count)  # no SEEK_DATA here: read everything
            return
        index = max(index, data_at // BLOCK)
        if index >= count:
            return
        hole_at = os.lseek(fd, data_at, os.SEEK_HOLE)
        last = min(count, -(-hole_at // BLOCK))
        yield from range(index, last)
        index = last
