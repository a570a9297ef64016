"""Managed disks: read one (None when absent) and replace its tags.

disk = read_disk(calls, "rg", "demo-osdisk")          # Disk, or None
set_disk_tags(calls, "rg", "demo-osdisk", tags)       # a PATCH, waited for
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from batchimage.azure.arm import begin_and_wait, get_or_none

if TYPE_CHECKING:
    from azure.mgmt.compute.models import Disk

    from batchimage.azure.calls import Calls


def read_disk(calls: Calls, group: str, name: str) -> Disk | None:
    """Managed disk `name`, or None."""
    return get_or_none(f"read disk {name}", calls.clients.compute.disks.get, group, name)


def set_disk_tags(calls: Calls, group: str, name: str, tags: Mapping[str, str]) -> None:
    """Replace managed disk `name`'s tags with `tags`, and wait for it."""
    begin_and_wait(
        calls,
        f"tag disk {name}",
        f"disk {name} tags",
        calls.clients.compute.disks.begin_update,
        group,
        name,
        {"tags": dict(tags)},
    )
