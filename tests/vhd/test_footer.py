"""The VHD footer codec: layout, checksum and CHS geometry, checked against qemu-img's files."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchimage.core.vhd_footer import (
    DISK_TYPE_DYNAMIC,
    DISK_TYPE_FIXED,
    FIXED_DATA_OFFSET,
    Geometry,
    build_footer,
    checksum,
    chs_geometry,
    parse_footer,
)
from tests.vhd.images import MIB, qemu_img, run


def test_built_footer_has_the_specified_layout() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    raw = build_footer(3 * MIB, unique_id=ident, timestamp=946_684_800 + 100)
    assert len(raw) == 512
    assert raw[:8] == b"conectix"
    assert struct.unpack_from(">I", raw, 8)[0] == 2  # features: reserved bit
    assert struct.unpack_from(">I", raw, 12)[0] == 0x0001_0000
    assert struct.unpack_from(">Q", raw, 16)[0] == FIXED_DATA_OFFSET
    assert struct.unpack_from(">I", raw, 24)[0] == 100
    assert struct.unpack_from(">QQ", raw, 40) == (3 * MIB, 3 * MIB)
    assert struct.unpack_from(">I", raw, 60)[0] == DISK_TYPE_FIXED
    assert raw[68:84] == ident.bytes
    assert raw[85:] == bytes(427)
    total = sum(raw[:64]) + sum(raw[68:])
    assert struct.unpack_from(">I", raw, 64)[0] == ~total & 0xFFFFFFFF


@given(pages=st.integers(min_value=1, max_value=(1 << 42) // 512))
def test_footer_round_trips_for_any_size(pages: int) -> None:
    footer = parse_footer(build_footer(pages * 512))
    assert footer is not None and footer.checksum_ok
    assert footer.current_size == footer.original_size == pages * 512
    assert footer.disk_type_name == "fixed"
    assert footer.geometry == chs_geometry(pages * 512)


def test_any_flipped_byte_breaks_the_checksum() -> None:
    raw = build_footer(MIB)
    for index in (9, 47, 63, 100, 511):
        damaged = bytearray(raw)
        damaged[index] ^= 0x40
        parsed = parse_footer(bytes(damaged))
        assert parsed is not None and not parsed.checksum_ok, index


def test_parse_rejects_what_is_not_a_footer() -> None:
    assert parse_footer(bytes(512)) is None
    assert parse_footer(b"conectix" + bytes(100)) is None


def test_build_refuses_sizes_that_are_not_whole_pages() -> None:
    with pytest.raises(ValueError, match="multiple of 512"):
        build_footer(1000)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (3 * MIB, Geometry(90, 4, 17)),  # small disks: 17 sectors per track, 4 heads
        (200 * MIB, Geometry(825, 16, 31)),  # more than 16 heads at 17 spt: 31 spt
        (1024 * MIB, Geometry(2080, 16, 63)),  # too many cylinders at 31 spt: 63 spt
        (127 * 1024 * MIB, Geometry(65278, 16, 255)),  # past 65535*16*63 sectors: 255 spt
        (4 << 40, Geometry(65535, 16, 255)),  # capped at the largest CHS geometry
    ],
)
def test_chs_geometry_follows_the_specification(size: int, expected: Geometry) -> None:
    assert chs_geometry(size) == expected


@pytest.mark.parametrize("size", ["3M", "5000K", "100M", "2G"])
def test_geometry_and_checksum_match_qemu_img(tmp_path: Path, size: str) -> None:
    qemu = qemu_img()
    image = tmp_path / "q.vhd"
    run(qemu, "create", "-q", "-f", "vpc", "-o", "subformat=fixed", image, size)
    raw = image.read_bytes()[-512:] if image.stat().st_size < 8 * MIB else _tail(image)
    footer = parse_footer(raw)
    assert footer is not None and footer.checksum_ok
    assert footer.checksum == checksum(raw)
    assert footer.geometry == chs_geometry(footer.current_size)


def test_dynamic_footer_is_recognised(tmp_path: Path) -> None:
    qemu = qemu_img()
    image = tmp_path / "d.vhd"
    run(qemu, "create", "-q", "-f", "vpc", image, "8M")
    footer = parse_footer(_tail(image))
    assert footer is not None and footer.checksum_ok
    assert footer.disk_type == DISK_TYPE_DYNAMIC and footer.disk_type_name == "dynamic"


def _tail(path: Path) -> bytes:
    with path.open("rb") as handle:
        handle.seek(-512, 2)
        return handle.read()
