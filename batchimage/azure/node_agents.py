"""Batch node agent SKUs: which agent runs an image, from the account's supported-images list.

    account = batch_account(clients, "sandbox-rg", "sandboxbatch")     # endpoint, mode, region
    images = supported_images(clients, account.endpoint)
    match = match_marketplace(images, "Canonical", "ubuntu-24_04-lts", "server")
    match.node_agent_sku_id, match.end_of_life

Never make the user guess a node agent SKU: it is looked up for the base image.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from batchimage.azure.arm import get_or_none, text
from batchimage.azure.errors import azure_call

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients


@dataclass(frozen=True)
class BatchAccount:
    """What the image pipeline needs to know about a Batch account."""

    name: str
    group: str
    location: str
    endpoint: str
    allocation_mode: str
    dedicated_core_quota: int | None
    spot_core_quota: int | None
    family_quotas: dict[str, int]


@dataclass(frozen=True)
class SupportedImage:
    """One entry of a Batch account's supported-images list."""

    node_agent_sku_id: str
    publisher: str
    offer: str
    sku: str
    os_type: str
    end_of_life: datetime | None


def batch_account_raw(clients: AzureClients, group: str, name: str) -> Any:
    """The SDK model of Batch account `name` in `group`, or None when it does not exist."""
    return get_or_none(
        f"read Batch account {name}", clients.batch_management.batch_account.get, group, name
    )


def batch_account(clients: AzureClients, group: str, name: str) -> BatchAccount | None:
    """The Batch account `name` in `group`, or None when it does not exist."""
    return account_of(batch_account_raw(clients, group, name), group)


def account_of(raw: Any, group: str) -> BatchAccount | None:
    """What the pipeline needs of a Batch account's SDK model (`raw`, in `group`; None: no
    account)."""
    if raw is None:
        return None
    families = {
        text(q.name).lower(): int(q.core_quota or 0)
        for q in (raw.dedicated_core_quota_per_vm_family or [])
    }
    return BatchAccount(
        name=raw.name,
        group=group,
        location=(raw.location or "").replace(" ", "").lower(),
        endpoint=text(raw.account_endpoint or ""),
        allocation_mode=text(raw.pool_allocation_mode or "BatchService"),
        dedicated_core_quota=raw.dedicated_core_quota,
        spot_core_quota=raw.low_priority_core_quota,
        family_quotas=families,
    )


def supported_images(clients: AzureClients, endpoint: str) -> list[SupportedImage]:
    """The images (with node agent SKUs) a Batch account supports."""
    client = clients.batch(endpoint)
    with azure_call("list Batch supported images"):
        return [_image(raw) for raw in client.list_supported_images()]


def _image(raw: Any) -> SupportedImage:
    ref = raw.image_reference
    return SupportedImage(
        node_agent_sku_id=text(raw.node_agent_sku_id),
        publisher=text(getattr(ref, "publisher", "") or ""),
        offer=text(getattr(ref, "offer", "") or ""),
        sku=text(getattr(ref, "sku", "") or ""),
        os_type=text(raw.os_type or "").lower(),
        end_of_life=raw.batch_support_end_of_life,
    )


def match_marketplace(
    images: list[SupportedImage], publisher: str, offer: str, sku: str
) -> SupportedImage | None:
    """The supported image for a Marketplace publisher/offer/sku (case-insensitive)."""
    wanted = (publisher.lower(), offer.lower(), sku.lower())
    for image in images:
        if (image.publisher.lower(), image.offer.lower(), image.sku.lower()) == wanted:
            return image
    return None


def agents_for(images: list[SupportedImage], os_type: str) -> list[str]:
    """The distinct node agent SKU ids for an OS type, in list order."""
    return list(dict.fromkeys(i.node_agent_sku_id for i in images if i.os_type == os_type))
