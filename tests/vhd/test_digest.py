"""The sparse XXH3-128 digest (as documented in docs/vhd.md) and the file fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xxhash

from batchimage.azure.vhd.digest import Fingerprint, SparseDigest, file_digest
from tests.vhd.images import MIB, make_fixed_vhd, seeded_bytes, sparse_layout


def documented_digest(path: Path) -> str:
    """The reference implementation printed in docs/vhd.md."""
    size = os.path.getsize(path)
    outer = xxhash.xxh3_128(f"batchimage-sparse-xxh3-128-v1 block=4194304 size={size}\n".encode())
    with open(path, "rb") as disk:
        for index in range(-(-size // 4194304)):
            block = disk.read(4194304)
            if block.count(0) != len(block):
                outer.update(index.to_bytes(8, "big") + xxhash.xxh3_128(block).digest())
    return outer.hexdigest()


def test_file_digest_matches_the_documented_definition(tmp_path: Path) -> None:
    path = make_fixed_vhd(tmp_path / "disk.vhd", 9 * MIB, sparse_layout())
    assert file_digest(path) == documented_digest(path)


def test_digest_depends_on_content_position_and_size(tmp_path: Path) -> None:
    base = file_digest(make_fixed_vhd(tmp_path / "a.vhd", 9 * MIB, sparse_layout()))
    moved = [
        (offset + 4 * MIB if offset < MIB else offset, data) for offset, data in sparse_layout()
    ]
    assert base != file_digest(make_fixed_vhd(tmp_path / "b.vhd", 9 * MIB, moved))
    assert base != file_digest(make_fixed_vhd(tmp_path / "c.vhd", 10 * MIB, sparse_layout()))
    one_bit = [(700, b"\x03stray byte"), *sparse_layout()[1:]]
    assert base != file_digest(make_fixed_vhd(tmp_path / "d.vhd", 9 * MIB, one_bit))


def test_blocks_must_come_in_order() -> None:
    digest = SparseDigest(8 * MIB)
    digest.add(1, b"x")
    with pytest.raises(ValueError, match="in order"):
        digest.add(1, b"y")


def test_fingerprint_sees_changes_the_stat_does_not(tmp_path: Path) -> None:
    path = make_fixed_vhd(tmp_path / "disk.vhd", 9 * MIB, [(0, seeded_bytes(1, 9 * MIB))])
    before = Fingerprint.of(path)
    stat = path.stat()
    with path.open("r+b") as handle:  # change a sampled spot, keep size and mtime
        handle.seek(0)
        handle.write(b"changed")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = Fingerprint.of(path)
    assert (after.size, after.mtime_ns) == (before.size, before.mtime_ns)
    assert after.sample != before.sample
    assert before.stat_matches(path)
    os.utime(path, ns=(1, 1))
    assert not before.stat_matches(path)
