"""A sandbox disk as a fixed VHD page blob: the disk content (see `content.py`) as JSON in
the first pages, zeros, and a real 512-byte VHD footer (cookie `conectix`, fixed type,
valid checksum) at the end. Reading a VHD back checks the footer the way Azure does."""

from __future__ import annotations

import json
from typing import Any

from batchimage.core.vhd_footer import DISK_TYPE_FIXED, FOOTER_SIZE, build_footer, parse_footer
from batchimage.sandbox.apierrors import ApiError, bad_request
from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute.models import blobs, content

MAGIC = b"BATCHIMAGE-SANDBOX-DISK/1\n"
GIB = 1024**3


def head_pages(disk: dict[str, Any]) -> bytes:
    """The first pages of the disk: magic, JSON length, JSON, zero padding to 512 bytes."""
    payload = json.dumps(content.normalise(disk), sort_keys=True).encode()
    raw = MAGIC + f"{len(payload):010d}\n".encode() + payload
    return raw + bytes(-len(raw) % blobs.PAGE)


def write(world: World, ref: blobs.BlobRef, disk: dict[str, Any]) -> int:
    """Write `disk` as a fixed VHD page blob at `ref`; returns the blob size in bytes."""
    disk_bytes = int(disk.get("size_gb") or 30) * GIB
    head = head_pages(disk)
    footer = build_footer(disk_bytes)
    blobs.write_page_blob(world, ref, disk_bytes + FOOTER_SIZE, [(0, head), (disk_bytes, footer)])
    return disk_bytes + FOOTER_SIZE


def invalid_vhd(name: str, url: str, why: str) -> ApiError:
    return bad_request(
        "InvalidVhd",
        f"The specified {why} in VHD footer indicates that disk '{name}' with blob {url} is "
        "not a supported VHD.",
    )


def parse_head(raw: bytes) -> dict[str, Any] | None:
    """The disk content in a VHD's first bytes, or None (a VHD not written by the sandbox)."""
    if not raw.startswith(MAGIC):
        return None
    rest = raw[len(MAGIC) :]
    try:
        length = int(rest[:10])
        found = json.loads(rest[11 : 11 + length])
    except ValueError:
        return None
    return content.normalise(found) if isinstance(found, dict) else None


def read(world: World, ref: blobs.BlobRef, name: str) -> dict[str, Any]:
    """The content of the VHD at `ref` (checked: fixed, cookie `conectix`, checksum, size
    a multiple of 1 MiB plus the footer); a foreign VHD gives an empty Linux content."""
    url = ref.url(world)
    total = blobs.size(world, ref)
    if total < FOOTER_SIZE or total % blobs.PAGE:
        raise invalid_vhd(name, url, "size")
    footer = parse_footer(blobs.read_range(world, ref, total - FOOTER_SIZE, FOOTER_SIZE))
    if footer is None:
        raise bad_request(
            "InvalidVhd",
            f"The specified cookie value in VHD footer indicates that disk '{name}' with blob "
            f"{url} is not a supported VHD. Disk is expected to have cookie value 'conectix'.",
        )
    if not footer.checksum_ok:
        raise invalid_vhd(name, url, "checksum")
    if footer.disk_type != DISK_TYPE_FIXED:
        raise bad_request(
            "InvalidVhd",
            f"The specified disk type in VHD footer indicates that disk '{name}' with blob "
            f"{url} is not a fixed VHD. Only fixed VHDs are supported.",
        )
    if footer.current_size % (1024 * 1024):
        raise bad_request(
            "InvalidVhd",
            f"The VHD {url} has an unsupported virtual size of {footer.current_size} bytes. "
            "The size must be a whole number (in MBs).",
        )
    head = blobs.read_range(world, ref, 0, min(total - FOOTER_SIZE, 1024 * 1024))
    found = parse_head(head) or content.normalise({})
    found["size_gb"] = max(1, -(-footer.current_size // GIB))
    return found
