"""Compute Galleries and their image definitions: read one (None when absent).

gallery = read_gallery(clients, "rg", "gallery")                # Gallery, or None
definition = read_definition(clients, "rg", "gallery", "name")  # GalleryImage, or None
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from batchimage.azure.arm import begin_and_wait, get_or_none

if TYPE_CHECKING:
    from azure.mgmt.compute.models import Gallery, GalleryImage

    from batchimage.azure.calls import Calls
    from batchimage.azure.clients import AzureClients


def read_gallery(clients: AzureClients, group: str, name: str) -> Gallery | None:
    """Gallery `name`, or None."""
    return get_or_none(f"read gallery {name}", clients.compute.galleries.get, group, name)


def read_definition(
    clients: AzureClients, group: str, gallery: str, name: str
) -> GalleryImage | None:
    """Image definition `name` of gallery `gallery`, or None."""
    ops = clients.compute.gallery_images
    return get_or_none(f"read image definition {name}", ops.get, group, gallery, name)


def write_gallery(
    calls: Calls, group: str, name: str, *, location: str, tags: Mapping[str, str], description: str
) -> None:
    """Create or update gallery `name`, and wait for it."""
    body = {"location": location, "tags": dict(tags), "properties": {"description": description}}
    ops = calls.clients.compute.galleries
    begin_and_wait(
        calls,
        f"create gallery {name}",
        f"gallery {name}",
        ops.begin_create_or_update,
        group,
        name,
        body,
    )


def write_definition(
    calls: Calls, group: str, gallery: str, name: str, body: Mapping[str, Any]
) -> None:
    """Create or update image definition `name` of `gallery` with `body`, and wait for it."""
    ops = calls.clients.compute.gallery_images
    begin_and_wait(
        calls,
        f"create image definition {name}",
        f"image definition {name}",
        ops.begin_create_or_update,
        group,
        gallery,
        name,
        dict(body),
    )
