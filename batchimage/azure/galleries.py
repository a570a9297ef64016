"""Compute Galleries and their image definitions: read one (None when absent).

gallery = read_gallery(clients, "rg", "gallery")                # Gallery, or None
definition = read_definition(clients, "rg", "gallery", "name")  # GalleryImage, or None
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchimage.azure.arm import get_or_none

if TYPE_CHECKING:
    from azure.mgmt.compute.models import Gallery, GalleryImage

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
