"""Recognise disk image formats and accept only a fixed VHD that Azure can use as it is.

`validate_fixed_vhd(path)` returns a `VhdInfo` or raises `VhdError` whose message names the
format found and gives the exact `qemu-img` commands that turn the file into an
uploadable fixed VHD (virtual size a whole number of MiB, file size = virtual size + 512).
"""

from __future__ import annotations

import os
import shlex
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from batchimage.azure.vhd.errors import VhdError
from batchimage.core.vhd_footer import (
    DISK_TYPE_DIFFERENCING,
    DISK_TYPE_DYNAMIC,
    DISK_TYPE_FIXED,
    FOOTER_SIZE,
    VhdFooter,
    parse_footer,
)

MIB = 1 << 20
# Largest page blob Azure accepts (8 TiB); a disk bigger than this cannot be uploaded.
MAX_PAGE_BLOB = 8 << 40

_VHDX_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
_VHDX_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
_VHDX_REGION_TABLE_AT = 192 * 1024
_VDI_SIGNATURE = 0xBEDA107F
# Creator applications whose footer size qemu trusts; for others it uses CHS geometry.
_QEMU_TRUSTS_CURRENT_SIZE = (b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0")


@dataclass(frozen=True)
class VhdInfo:
    """A fixed VHD that passed validation: `virtual_size` data bytes, then the footer."""

    path: Path
    file_size: int
    virtual_size: int
    footer: VhdFooter


@dataclass(frozen=True)
class DiskFormat:
    """What a file is: a qemu-img format name, a description, and its virtual size if known."""

    qemu_format: str
    description: str
    virtual_size: int | None


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(size)


def _qemu_vpc_size(footer: VhdFooter) -> int:
    """The virtual size qemu-img reads from a VHD footer (it mirrors qemu's vpc driver)."""
    geometry = footer.geometry
    is_max = (geometry.cylinders, geometry.heads, geometry.sectors) == (65535, 16, 255)
    if is_max or footer.creator_app in _QEMU_TRUSTS_CURRENT_SIZE:
        return footer.current_size
    return geometry.cylinders * geometry.heads * geometry.sectors * 512


def _vhdx_virtual_size(handle: BinaryIO) -> int | None:
    """Virtual disk size from a VHDX's metadata region, or None if it cannot be read."""
    table = _read_at(handle, _VHDX_REGION_TABLE_AT, 64 * 1024)
    if len(table) < 16 or table[:4] != b"regi":
        return None
    (count,) = struct.unpack_from("<I", table, 8)
    for index in range(min(count, 2047)):
        entry = table[16 + 32 * index : 48 + 32 * index]
        if len(entry) < 32 or entry[:16] != _VHDX_METADATA_REGION:
            continue
        region_offset, region_length = struct.unpack_from("<QI", entry, 16)
        metadata = _read_at(handle, region_offset, min(region_length, 64 * 1024))
        if metadata[:8] != b"metadata":
            return None
        (items,) = struct.unpack_from("<H", metadata, 10)
        for item in range(items):
            raw = metadata[32 + 32 * item : 64 + 32 * item]
            if len(raw) == 32 and raw[:16] == _VHDX_VIRTUAL_DISK_SIZE:
                item_offset, _length = struct.unpack_from("<II", raw, 16)
                value = _read_at(handle, region_offset + item_offset, 8)
                return struct.unpack("<Q", value)[0] if len(value) == 8 else None
    return None


def detect_format(path: Path) -> tuple[DiskFormat, VhdFooter | None]:
    """The format of the disk image at `path`, and its VHD footer when it has one."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = _read_at(handle, 0, 512)
            tail = _read_at(handle, size - FOOTER_SIZE, FOOTER_SIZE) if size >= FOOTER_SIZE else b""
            if head.startswith(b"vhdxfile"):
                return DiskFormat("vhdx", "a VHDX disk", _vhdx_virtual_size(handle)), None
    except OSError as exc:
        raise VhdError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head.startswith(b"QFI\xfb"):
        return DiskFormat("qcow2", "a qcow2 disk", struct.unpack_from(">Q", head, 24)[0]), None
    if head.startswith(b"KDMV"):
        sectors = struct.unpack_from("<Q", head, 12)[0]
        return DiskFormat("vmdk", "a VMDK disk", sectors * 512), None
    if len(head) >= 0x178 and struct.unpack_from("<I", head, 0x40)[0] == _VDI_SIGNATURE:
        return DiskFormat(
            "vdi", "a VirtualBox VDI disk", struct.unpack_from("<Q", head, 0x170)[0]
        ), None
    footer = parse_footer(tail)
    if footer is None and head.startswith(b"conectix"):
        footer = parse_footer(head)  # dynamic VHDs keep a copy of the footer at the start
    if footer is not None and footer.checksum_ok:
        kind = {
            DISK_TYPE_FIXED: "a fixed VHD",
            DISK_TYPE_DYNAMIC: "a dynamic (sparse) VHD",
            DISK_TYPE_DIFFERENCING: "a differencing VHD (it needs its parent disk)",
        }.get(footer.disk_type, f"a VHD of unknown disk type {footer.disk_type}")
        return DiskFormat("vpc", kind, _qemu_vpc_size(footer)), footer
    if footer is not None:
        return DiskFormat("vpc", "a VHD with a damaged footer", None), footer
    return DiskFormat("raw", "a raw disk image (no VHD footer)", size), None


def round_up_mib(size: int) -> int:
    """`size` rounded up to a whole number of MiB."""
    return -(-size // MIB) * MIB


def conversion_commands(path: Path, found: DiskFormat) -> list[str]:
    """The qemu-img commands that make an uploadable fixed VHD next to `path`."""
    source = shlex.quote(str(path))
    target = shlex.quote(str(path.with_name(f"{path.stem}-fixed.vhd")))
    to_fixed = "qemu-img convert -f {fmt} -O vpc -o subformat=fixed,force_size {src} {dst}"
    size = found.virtual_size
    if size is not None and size % MIB == 0:
        return [to_fixed.format(fmt=found.qemu_format, src=source, dst=target)]
    scratch = shlex.quote(str(path.with_name(f"{path.stem}-mib.raw")))
    rounded = (
        str(round_up_mib(size))
        if size is not None
        else f"<virtual size from `qemu-img info {source}`, rounded up to a multiple of 1048576>"
    )
    return [
        f"qemu-img convert -f {found.qemu_format} -O raw {source} {scratch}",
        f"qemu-img resize -f raw {scratch} {rounded}",
        to_fixed.format(fmt="raw", src=scratch, dst=target),
    ]


def _refuse(path: Path, why: str, found: DiskFormat) -> VhdError:
    commands = conversion_commands(path, found)
    lead = "convert it with" if len(commands) == 1 else "convert it (rounding up to a MiB) with"
    return VhdError(
        f"{path}: {why}; Azure needs a fixed VHD whose size is a whole number of MiB; "
        f"{lead}:\n  " + "\n  ".join(commands)
    )


def validate_fixed_vhd(path: str | os.PathLike[str]) -> VhdInfo:
    """The `VhdInfo` of an uploadable fixed VHD at `path`; else `VhdError` saying how to fix it."""
    path = Path(path)
    if not path.is_file():
        raise VhdError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    found, footer = detect_format(path)
    file_size = path.stat().st_size
    if found.qemu_format != "vpc" or footer is None:
        raise _refuse(path, f"this is {found.description}, not a VHD", found)
    if not footer.checksum_ok:
        raise VhdError(
            f"{path}: the VHD footer is damaged (checksum {footer.checksum:#010x} stored, "
            f"the footer's bytes sum to another value); copy the file again from its source "
            f"or re-export the disk"
        )
    if footer.disk_type != DISK_TYPE_FIXED:
        raise _refuse(path, f"this is {found.description}", found)
    if file_size != footer.current_size + FOOTER_SIZE:
        raise VhdError(
            f"{path}: the file has {file_size} bytes but its footer describes a "
            f"{footer.current_size}-byte disk (expected {footer.current_size + FOOTER_SIZE} "
            f"bytes with the footer); the file was truncated or padded: copy it again"
        )
    if footer.current_size % MIB:
        raise _refuse(
            path,
            f"its virtual size {footer.current_size} bytes is not a whole number of MiB",
            found,
        )
    if footer.current_size > MAX_PAGE_BLOB:
        raise VhdError(
            f"{path}: its virtual size {footer.current_size} bytes is over the 8 TiB a page "
            f"blob can hold"
        )
    return VhdInfo(path=path, file_size=file_size, virtual_size=footer.current_size, footer=footer)
