"""Managed disks: read one (None when absent) and replace its tags.

disk = read_disk(calls, "rg", "demo-osdisk")          # Disk, or None
set_disk_tags(calls, "rg", "demo-osdisk", tags)       # a PATCH, waited for
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from batchimage.azure.arm import begin_and_wait, get_or_none, text
from batchimage.core.errors import PermanentAzureError
from batchimage.core.redact import register_secret

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


@contextmanager
def read_access(calls: Calls, group: str, name: str, *, seconds: int) -> Iterator[str]:
    """A read SAS URL of managed disk `name` for `seconds` (registered as a secret), its
    access revoked when the block ends, however it ends."""
    disks = calls.clients.compute.disks
    access = begin_and_wait(
        calls,
        f"grant read access to disk {name}",
        f"read access to {name}",
        disks.begin_grant_access,
        group,
        name,
        {"access": "Read", "durationInSeconds": seconds},
    )
    sas = text(getattr(access, "access_sas", "") or "")
    register_secret(sas)
    try:
        if not sas:
            raise PermanentAzureError(f"disk {name} granted no access URL", code="NoAccessSas")
        yield sas
    finally:
        begin_and_wait(
            calls,
            f"revoke access to disk {name}",
            f"access to {name} to be revoked",
            disks.begin_revoke_access,
            group,
            name,
        )
