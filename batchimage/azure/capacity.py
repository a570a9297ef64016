"""What a region offers a subscription: its VM sizes (resource SKUs) and the compute usage
against the quotas.

    sizes = vm_sizes(clients, "eastus")       # lower-case size name -> ResourceSku
    used = compute_usage(clients, "eastus")   # quota name -> (current, limit, display name)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchimage.azure.arm import text
from batchimage.azure.errors import azure_call

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients


def vm_sizes(clients: AzureClients, location: str) -> dict[str, Any]:
    """The VM sizes offered in `location`, by lower-case name."""
    with azure_call(f"list VM sizes (resource SKUs) in {location}"):
        raw = clients.compute.resource_skus.list(filter=f"location eq '{location}'")
        return {
            text(s.name).lower(): s
            for s in raw
            if text(s.resource_type).lower() == "virtualmachines"
        }


def compute_usage(clients: AzureClients, location: str) -> dict[str, tuple[int, int, str]]:
    """Compute usage in `location`: quota name (lower case) -> (current, limit, display
    name)."""
    with azure_call(f"read compute usage in {location}"):
        return {
            text(u.name.value).lower(): (
                int(u.current_value),
                int(u.limit),
                text(u.name.localized_value or u.name.value),
            )
            for u in clients.compute.usage.list(location)
            if u.name is not None
        }
