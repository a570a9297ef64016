"""Locks on the Azure resources several pipelines may share (a gallery, an image
definition), held by this process while one of its runs writes or deletes them.

    with holding(clients, "gallery", group, gallery):   # create, or delete if unused
        ...

Azure takes concurrent writes to one resource, but a run reads before it writes (does
the gallery exist, whose is it, does it still hold others' definitions): two specs of one
command doing that at the same moment could both create the gallery, or one delete it
while the other puts a definition in it. Under the lock, the second one reads what the
first did. Runs in other processes are not held back (their pipelines' own guards apply).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_locks: dict[tuple[str, ...], threading.RLock] = {}
_locks_lock = threading.Lock()


@contextmanager
def holding(clients: Any, kind: str, group: str, name: str) -> Iterator[None]:
    """Hold this process's lock on resource `name` of `kind` in `group` (the clients'
    cloud and subscription) for the block; reentrant within one thread."""
    endpoint = str(getattr(clients.profile, "arm_endpoint", "")).rstrip("/").lower()
    key = (endpoint, str(clients.subscription_id).lower(), kind, group.lower(), name.lower())
    with _locks_lock:
        lock = _locks.setdefault(key, threading.RLock())
    with lock:
        yield
