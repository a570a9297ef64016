"""The run marker: one tag on the pipeline's resource group naming the run changing it.

    found, value = read_marker(clients, "build-rg")   # (group exists, the tag's value)
    write_marker(clients, "build-rg", value)          # set it; None removes it; False: no group

The tag is `Marks.Tag.ACTIVE_RUN` (`batchimage-active-run`); its value is whatever the
caller puts there (a short JSON record of the run). Writing reads the group's tags and
patches them with only this one changed, so the group's other tags stay as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchimage.azure.arm import get_or_none, tags_of
from batchimage.azure.errors import azure_call
from batchimage.azure.groups import read_group
from batchimage.core.ownership import Marks

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients

MAX_VALUE = 256  # Azure's limit on a tag value


def read_marker(clients: AzureClients, group: str) -> tuple[bool, str | None]:
    """Whether `group` exists, and its marker's value (None when it carries none)."""
    found = read_group(clients, group)
    if found is None:
        return False, None
    return True, tags_of(found).get(Marks.Tag.ACTIVE_RUN)


def write_marker(clients: AzureClients, group: str, value: str | None) -> bool:
    """Set (or with None remove) the marker on `group`; False when the group does not exist."""
    if value is not None and len(value) > MAX_VALUE:
        raise ValueError(f"a run marker is at most {MAX_VALUE} characters")
    groups = clients.resource.resource_groups
    found = get_or_none(f"read group {group}", groups.get, group)
    if found is None:
        return False
    tags = tags_of(found)
    if tags.get(Marks.Tag.ACTIVE_RUN) == value:
        return True
    if value is None:
        tags.pop(Marks.Tag.ACTIVE_RUN, None)
    else:
        tags[Marks.Tag.ACTIVE_RUN] = value
    with azure_call(f"mark the run on group {group}"):
        groups.update(group, {"tags": tags})
    return True
