"""The 512-byte VHD footer: parse, check and build it (Microsoft VHD specification, v1.0).

Every VHD ends with this footer (big-endian fields); a *fixed* VHD is the raw disk
followed by it, which is what Azure page blobs and disks expect.

    offset size field
     0      8   cookie "conectix"
     8      4   features (0x2 = reserved bit, always set)
    12      4   file format version 0x00010000
    16      8   data offset (0xFFFFFFFFFFFFFFFF for fixed disks)
    24      4   timestamp, seconds since 2000-01-01 00:00:00 UTC
    28      4   creator application
    32      4   creator version
    36      4   creator host OS
    40      8   original size (bytes)
    48      8   current size (bytes) - the virtual size Azure uses
    56      4   disk geometry: cylinders (2), heads (1), sectors per track (1)
    60      4   disk type: 2 fixed, 3 dynamic, 4 differencing
    64      4   checksum: one's complement of the byte sum of the footer without this field
    68     16   unique id
    84      1   saved state
    85    427   reserved (zero)
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

FOOTER_SIZE = 512
COOKIE = b"conectix"
FIXED_DATA_OFFSET = 0xFFFF_FFFF_FFFF_FFFF
DISK_TYPE_FIXED = 2
DISK_TYPE_DYNAMIC = 3
DISK_TYPE_DIFFERENCING = 4
DISK_TYPE_NAMES = {
    DISK_TYPE_FIXED: "fixed",
    DISK_TYPE_DYNAMIC: "dynamic",
    DISK_TYPE_DIFFERENCING: "differencing",
}
VHD_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z as a Unix time
# qemu reads the virtual size from the current-size field (not from CHS geometry) only for
# creators it knows write it that way; "win " (Hyper-V) is one, so our files read back
# with their exact size in qemu-img as well as in Azure.
CREATOR_APP = b"win "
CREATOR_HOST_OS = b"Wi2k"

_LAYOUT = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427s")
_CHECKSUM_AT = 64


@dataclass(frozen=True)
class Geometry:
    """Cylinders/heads/sectors-per-track as stored in the footer."""

    cylinders: int
    heads: int
    sectors: int


@dataclass(frozen=True)
class VhdFooter:
    """The fields of a VHD footer, as read; `checksum_ok` says whether it is intact."""

    cookie: bytes
    features: int
    version: int
    data_offset: int
    timestamp: int
    creator_app: bytes
    creator_version: int
    creator_host_os: bytes
    original_size: int
    current_size: int
    geometry: Geometry
    disk_type: int
    checksum: int
    unique_id: uuid.UUID
    saved_state: int
    checksum_ok: bool

    @property
    def disk_type_name(self) -> str:
        """`fixed`, `dynamic`, `differencing` or `unknown (<n>)`."""
        return DISK_TYPE_NAMES.get(self.disk_type, f"unknown ({self.disk_type})")


def checksum(footer: bytes) -> int:
    """One's complement of the byte sum of a 512-byte footer, its checksum field excluded."""
    total = sum(footer[:_CHECKSUM_AT]) + sum(footer[_CHECKSUM_AT + 4 : FOOTER_SIZE])
    return ~total & 0xFFFF_FFFF


def parse_footer(raw: bytes) -> VhdFooter | None:
    """The footer in `raw` (exactly 512 bytes), or None when it has no `conectix` cookie."""
    if len(raw) != FOOTER_SIZE or not raw.startswith(COOKIE):
        return None
    (
        cookie, features, version, data_offset, timestamp, creator_app, creator_version,
        host_os, original_size, current_size, cylinders, heads, sectors, disk_type, stored,
        unique_id, saved_state, _reserved,
    ) = _LAYOUT.unpack(raw)  # fmt: skip
    return VhdFooter(
        cookie=cookie,
        features=features,
        version=version,
        data_offset=data_offset,
        timestamp=timestamp,
        creator_app=creator_app,
        creator_version=creator_version,
        creator_host_os=host_os,
        original_size=original_size,
        current_size=current_size,
        geometry=Geometry(cylinders, heads, sectors),
        disk_type=disk_type,
        checksum=stored,
        unique_id=uuid.UUID(bytes=unique_id),
        saved_state=saved_state,
        checksum_ok=stored == checksum(raw),
    )


def chs_geometry(size: int) -> Geometry:
    """The CHS geometry the VHD specification (appendix) assigns to a disk of `size` bytes."""
    total = min(size // 512, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        sectors, heads = 255, 16
        cyl_times_heads = total // sectors
    else:
        sectors = 17
        cyl_times_heads = total // sectors
        heads = max((cyl_times_heads + 1023) // 1024, 4)
        if cyl_times_heads >= heads * 1024 or heads > 16:
            sectors, heads = 31, 16
            cyl_times_heads = total // sectors
        if cyl_times_heads >= heads * 1024:
            sectors, heads = 63, 16
            cyl_times_heads = total // sectors
    return Geometry(cyl_times_heads // heads, heads, sectors)


def build_footer(
    size: int,
    *,
    disk_type: int = DISK_TYPE_FIXED,
    unique_id: uuid.UUID | None = None,
    timestamp: float | None = None,
) -> bytes:
    """A valid 512-byte footer for a disk of `size` bytes (a multiple of 512)."""
    if size <= 0 or size % 512:
        raise ValueError(f"a VHD's size must be a positive multiple of 512 bytes, not {size}")
    geometry = chs_geometry(size)
    seconds = int((time.time() if timestamp is None else timestamp) - VHD_EPOCH) & 0xFFFF_FFFF
    data_offset = FIXED_DATA_OFFSET if disk_type == DISK_TYPE_FIXED else FOOTER_SIZE
    raw = bytearray(
        _LAYOUT.pack(
            COOKIE,
            2,
            0x0001_0000,
            data_offset,
            seconds,
            CREATOR_APP,
            0x0001_0000,
            CREATOR_HOST_OS,
            size,
            size,
            geometry.cylinders,
            geometry.heads,
            geometry.sectors,
            disk_type,
            0,
            (unique_id or uuid.uuid4()).bytes,
            0,
            bytes(427),
        )
    )
    struct.pack_into(">I", raw, _CHECKSUM_AT, checksum(bytes(raw)))
    return bytes(raw)


def append_footer(
    path: Path, *, unique_id: uuid.UUID | None = None, timestamp: float | None = None
) -> None:
    """Make the raw disk at `path` (size a multiple of 512) a fixed VHD by appending a footer."""
    size = path.stat().st_size
    footer = build_footer(size, unique_id=unique_id, timestamp=timestamp)
    with path.open("ab") as out:
        out.write(footer)
