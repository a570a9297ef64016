"""Gallery image versions: list and read them, start a create, and include one in its
definition's `latest`.

    found = list_versions(clients, "rg", "gallery", "definition")   # GalleryImageVersions
    raw = read_version(clients, "rg", "gallery", "definition", "1.0.0", replication=True)
    poller = start_version(clients, "rg", "gallery", "definition", "1.0.1", body)
    include_in_latest(calls, "rg", "gallery", "definition", raw)     # PATCH, waited for
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azure.mgmt.compute.models import (
    GalleryImageVersion,
    GalleryImageVersionProperties,
    GalleryImageVersionPublishingProfile,
    GalleryImageVersionUpdate,
)

from batchimage.azure.arm import get_or_none, text, wait
from batchimage.azure.errors import azure_call

if TYPE_CHECKING:
    from azure.core.polling import LROPoller

    from batchimage.azure.calls import Calls
    from batchimage.azure.clients import AzureClients


def list_versions(
    clients: AzureClients, group: str, gallery: str, definition: str
) -> list[GalleryImageVersion]:
    """Every version of image definition `definition`."""
    ops = clients.compute.gallery_image_versions
    with azure_call(f"list versions of image definition {definition}"):
        return list(ops.list_by_gallery_image(group, gallery, definition))


def read_version(
    clients: AzureClients,
    group: str,
    gallery: str,
    definition: str,
    name: str,
    *,
    replication: bool = False,
) -> GalleryImageVersion | None:
    """Version `name` (with its per-region replication status when `replication`), or None."""
    ops = clients.compute.gallery_image_versions
    expand = {"expand": "ReplicationStatus"} if replication else {}
    return get_or_none(
        f"read image version {name}", ops.get, group, gallery, definition, name, **expand
    )


def start_version(
    clients: AzureClients,
    group: str,
    gallery: str,
    definition: str,
    name: str,
    body: dict[str, Any],
) -> LROPoller[GalleryImageVersion]:
    """Start creating (or updating) version `name` with `body`; its poller."""
    ops = clients.compute.gallery_image_versions
    with azure_call(f"create image version {name}"):
        return ops.begin_create_or_update(
            group, gallery, definition, name, GalleryImageVersion(body)
        )


def include_in_latest(
    calls: Calls, group: str, gallery: str, definition: str, version: GalleryImageVersion
) -> None:
    """Let `version` be its definition's `latest` (publishingProfile.excludeFromLatest
    false), and wait for it. The update carries the version's own storage profile, which
    Azure requires in the body."""
    name = text(version.name)
    body = GalleryImageVersionUpdate(
        properties=GalleryImageVersionProperties(
            publishing_profile=GalleryImageVersionPublishingProfile(exclude_from_latest=False),
            storage_profile=version.storage_profile,
        )
    )
    ops = calls.clients.compute.gallery_image_versions
    operation = f"update image version {name}"
    with azure_call(operation):
        poller = ops.begin_update(group, gallery, definition, name, body)
    wait(calls, poller, f"image version {name} to be updated", operation)
