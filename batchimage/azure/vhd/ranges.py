"""Page-range bookkeeping: what the blob already holds, and a digest of a set of ranges."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient


class RangeMap:
    """A streaming summary of sorted, disjoint ranges: touching ones are joined, then hashed.

    Two RangeMaps fed the same set of bytes (however split) end with the same `key()`,
    so the ranges written can be compared with the blob's page ranges in constant memory.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._open: tuple[int, int] | None = None
        self.count = 0
        self.total = 0

    def add(self, start: int, end: int) -> None:
        """Add [start, end), which must begin at or after the end of the previous range."""
        if self._open is not None:
            if start < self._open[1]:
                raise ValueError(f"range {start}-{end} overlaps or precedes {self._open}")
            if start == self._open[1]:
                self._open = (self._open[0], end)
                return
            self._flush()
        self._open = (start, end)

    def _flush(self) -> None:
        if self._open is not None:
            start, end = self._open
            self._hash.update(f"{start}-{end};".encode())
            self.count += 1
            self.total += end - start
            self._open = None

    def key(self) -> tuple[int, int, str]:
        """(ranges, bytes, hash) of everything added; closes the last range."""
        self._flush()
        return self.count, self.total, self._hash.hexdigest()


class Coverage:
    """Walks the blob's page ranges (sorted) alongside the file's ranges (sorted)."""

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        self._ranges: Iterator[tuple[int, int]] = iter(ranges)
        self._current: tuple[int, int] | None = next(self._ranges, None)

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) the blob does not hold yet (queries must not go back)."""
        parts: list[tuple[int, int]] = []
        pos = start
        while pos < end:
            while self._current is not None and self._current[1] <= pos:
                self._current = next(self._ranges, None)
            if self._current is None or self._current[0] >= end:
                parts.append((pos, end))
                break
            have_start, have_end = self._current
            if have_start > pos:
                parts.append((pos, have_start))
            pos = have_end
        return parts


def blob_ranges(blob: BlobClient) -> Iterator[tuple[int, int]]:
    """The written page ranges of a page blob as half-open (start, end) pairs, in order."""
    for page_range in blob.list_page_ranges():
        if not page_range.cleared and page_range.start is not None and page_range.end is not None:
            yield page_range.start, page_range.end + 1
