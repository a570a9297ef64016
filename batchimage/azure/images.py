"""Managed images: read one (None when absent) and capture one from a generalized VM.

found = read_image(calls, "rg", "demo-image")        # Image, or None
write_image(calls, "rg", "demo-image", location="eastus", tags=tags,
            vm_id=vm_id, hyper_v="V2", timeout_s=1800)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from batchimage.azure.arm import begin_and_wait, get_or_none

if TYPE_CHECKING:
    from azure.mgmt.compute.models import Image

    from batchimage.azure.calls import Calls


def read_image(calls: Calls, group: str, name: str) -> Image | None:
    """Managed image `name`, or None."""
    return get_or_none(f"read image {name}", calls.clients.compute.images.get, group, name)


def write_image(
    calls: Calls,
    group: str,
    name: str,
    *,
    location: str,
    tags: Mapping[str, str],
    vm_id: str,
    hyper_v: str,
    timeout_s: float | None = None,
) -> Image:
    """Managed image `name` captured from the generalized VM `vm_id`, and wait for it."""
    body = {
        "location": location,
        "tags": dict(tags),
        "properties": {"sourceVirtualMachine": {"id": vm_id}, "hyperVGeneration": hyper_v},
    }
    return begin_and_wait(
        calls,
        f"create image {name}",
        f"managed image {name}",
        calls.clients.compute.images.begin_create_or_update,
        group,
        name,
        body,
        timeout_s=timeout_s,
    )
