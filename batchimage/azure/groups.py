"""Resource groups and resource providers: read (None when absent) and write.

found = read_group(clients, "rg")                    # ResourceGroup, or None
write_group(clients, "rg", location="eastus", tags={...})
provider = read_provider(clients, "Microsoft.Batch")  # Provider, or None
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from batchimage.azure.arm import get_or_none
from batchimage.azure.errors import azure_call

if TYPE_CHECKING:
    from azure.mgmt.resource.resources.models import (
        GenericResourceExpanded,
        Provider,
        ResourceGroup,
    )

    from batchimage.azure.clients import AzureClients


def read_group(clients: AzureClients, name: str) -> ResourceGroup | None:
    """Resource group `name`, or None."""
    return get_or_none(f"read group {name}", clients.resource.resource_groups.get, name)


def write_group(
    clients: AzureClients, name: str, *, location: str, tags: Mapping[str, str]
) -> ResourceGroup:
    """Create or update resource group `name` in `location` with `tags`."""
    with azure_call(f"create group {name}"):
        return clients.resource.resource_groups.create_or_update(
            name, {"location": location, "tags": dict(tags)}
        )


def read_provider(clients: AzureClients, namespace: str) -> Provider | None:
    """Resource provider `namespace` as the subscription has it (registration state), or None."""
    return get_or_none(f"read provider {namespace}", clients.resource.providers.get, namespace)


def resources_in(clients: AzureClients, group: str) -> list[GenericResourceExpanded]:
    """Every resource group `group` holds now."""
    with azure_call(f"list resources in group {group}"):
        return list(clients.resource.resources.list_by_resource_group(group))
