"""The run marker: a tag on the pipeline's resource group naming the run changing it.

    found, value = read_marker(clients, "build-rg")   # (group exists, the tag's value)
    write_marker(clients, "build-rg", value)          # set it; None removes it; False: no group
    read_marker(clients, "build-rg", tag=Marks.Tag.active_run("demo"))   # a pipeline's own

The tag is `Marks.Tag.ACTIVE_RUN` (`batchimage-active-run`), or a pipeline's own
(`batchimage-active-run-<pipeline>`) while another pipeline's run holds that one; its value
is whatever the caller puts there (a short JSON record of the run). Writing reads the
group's tags and patches them with only this one changed, so the group's other tags stay as
they are; writes to one group from this process go one at a time, so two pipelines of one
command marking the same group do not write over each other's tag.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from batchimage.azure.arm import get_or_none, tags_of
from batchimage.azure.errors import azure_call
from batchimage.azure.groups import read_group
from batchimage.core.ownership import Marks

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients

MAX_VALUE = 256  # Azure's limit on a tag value


_writing: dict[str, threading.Lock] = {}  # per group (lowercase): one write at a time
_writing_lock = threading.Lock()


def read_marker(
    clients: AzureClients, group: str, tag: str = Marks.Tag.ACTIVE_RUN
) -> tuple[bool, str | None]:
    """Whether `group` exists, and its marker's value (None when it carries none)."""
    exists, markers = read_markers(clients, group)
    return exists, markers.get(tag)


def read_markers(clients: AzureClients, group: str) -> tuple[bool, dict[str, str]]:
    """Whether `group` exists, and every marker tag on it (name -> value), in one read."""
    found = read_group(clients, group)
    if found is None:
        return False, {}
    prefix = Marks.Tag.ACTIVE_RUN
    return True, {k: v for k, v in tags_of(found).items() if k.startswith(prefix)}


def write_marker(
    clients: AzureClients, group: str, value: str | None, tag: str = Marks.Tag.ACTIVE_RUN
) -> bool:
    """Set (or with None remove) the marker `tag` on `group`; False when the group does not
    exist."""
    if value is not None and len(value) > MAX_VALUE:
        raise ValueError(f"a run marker is at most {MAX_VALUE} characters")
    groups = clients.resource.resource_groups
    with _writing_lock:
        lock = _writing.setdefault(group.lower(), threading.Lock())
    with lock:
        found = get_or_none(f"read group {group}", groups.get, group)
        if found is None:
            return False
        tags = tags_of(found)
        if tags.get(tag) == value:
            return True
        if value is None:
            tags.pop(tag, None)
        else:
            tags[tag] = value
        with azure_call(f"mark the run on group {group}"):
            groups.update(group, {"tags": tags})
    return True
