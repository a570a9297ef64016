"""Verify a VHD page blob in place: it exists, is a page blob, and ends in an intact
fixed-VHD footer whose size matches the blob's.

    size, problem = inspect_vhd_blob(blob_client)    # problem None when it is a good VHD
"""

from __future__ import annotations

from typing import Any

from batchimage.azure.arm import text
from batchimage.azure.errors import azure_call
from batchimage.core.vhd_footer import parse_footer

FOOTER = 512


def inspect_vhd_blob(blob: Any) -> tuple[int, str | None]:
    """(size in bytes, what is wrong or None) of the blob `blob` (a BlobClient)."""
    with azure_call(f"read VHD blob {blob.blob_name}"):
        if not blob.exists():
            return 0, "the blob does not exist"
        props = blob.get_blob_properties()
        size = int(props.size or 0)
        kind = text(getattr(props, "blob_type", "")).split(".")[-1]
        if "page" not in kind.lower():
            return size, f"it is a {kind}, not a page blob"
        if size < FOOTER or size % FOOTER:
            return size, f"its size {size} is not a whole number of 512-byte pages"
        raw = blob.download_blob(offset=size - FOOTER, length=FOOTER).readall()
    footer = parse_footer(raw)
    if footer is None:
        return size, "it does not end in a VHD footer (cookie 'conectix')"
    if not footer.checksum_ok:
        return size, "its VHD footer checksum is wrong"
    if footer.disk_type_name != "fixed":
        return size, f"it is a {footer.disk_type_name} VHD; Azure needs a fixed VHD"
    if footer.current_size + FOOTER != size:
        return size, (
            f"its footer says {footer.current_size} bytes of disk, the blob holds {size - FOOTER}"
        )
    return size, None
