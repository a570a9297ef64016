"""What is "on" a sandbox OS disk: the guest-side facts that scripts change and images carry.

A disk's content lives in the `compute_content` table (never in ARM JSON), keyed by a
content id that disks, VMs, images and gallery image versions point at with `_content`:

    {"os_type": "Linux" | "Windows", "source": {publisher, offer, sku, version} | None,
     "plan": {...} | None, "hyper_v_generation": "V1" | "V2", "architecture": "x64",
     "size_gb": 30, "os_name": "ubuntu", "os_version": "24.04",
     "manifest": [{kind, script | file, sha256, ...}, ...],
     "deprovisioned": bool, "extensions": [names baked in]}

Capturing copies the content (`snapshot`), so later changes to the VM do not reach the
image. A VHD carries the same JSON in its first pages (see `vhd.py`).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from batchimage.sandbox.context import World

TABLE = "compute_content"


def table(world: World) -> dict[str, Any]:
    return world.store.table(TABLE)


def new(
    world: World,
    *,
    os_type: str,
    source: dict[str, str] | None = None,
    plan: dict[str, str] | None = None,
    hyper_v_generation: str = "V2",
    architecture: str = "x64",
    size_gb: int = 30,
    os_name: str = "",
    os_version: str = "",
) -> str:
    """Store a fresh (empty manifest) content; returns its id."""
    return put(
        world,
        {
            "os_type": os_type,
            "source": source,
            "plan": plan,
            "hyper_v_generation": hyper_v_generation,
            "architecture": architecture,
            "size_gb": size_gb,
            "os_name": os_name,
            "os_version": os_version,
            "manifest": [],
            "deprovisioned": False,
            "extensions": [],
        },
    )


def put(world: World, content: dict[str, Any]) -> str:
    """Store `content` under a new id; returns the id."""
    content_id = uuid.uuid4().hex
    table(world)[content_id] = normalise(content)
    world.store.touch()
    return content_id


def normalise(content: dict[str, Any]) -> dict[str, Any]:
    """`content` with every key present (contents read back from VHDs may lack some)."""
    return {
        "os_type": str(content.get("os_type") or "Linux"),
        "source": content.get("source"),
        "plan": content.get("plan"),
        "hyper_v_generation": str(content.get("hyper_v_generation") or "V2"),
        "architecture": str(content.get("architecture") or "x64"),
        "size_gb": int(content.get("size_gb") or 30),
        "os_name": str(content.get("os_name") or ""),
        "os_version": str(content.get("os_version") or ""),
        "manifest": list(content.get("manifest") or []),
        "deprovisioned": bool(content.get("deprovisioned", False)),
        "extensions": list(content.get("extensions") or []),
    }


def get(world: World, content_id: str | None) -> dict[str, Any] | None:
    """The content `content_id` (None when unknown)."""
    if not content_id:
        return None
    found: dict[str, Any] | None = table(world).get(content_id)
    return found


def of(world: World, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The content a record (disk, VM, image, version) points at."""
    if record is None:
        return None
    return get(world, record.get("_content"))


def snapshot(world: World, content_id: str | None, **changes: Any) -> str | None:
    """A copy of content `content_id` under a new id (with `changes` applied)."""
    found = get(world, content_id)
    if found is None:
        return None
    copied = copy.deepcopy(found)
    copied.update(changes)
    return put(world, copied)


def drop(world: World, content_id: str | None) -> None:
    if content_id and table(world).pop(content_id, None) is not None:
        world.store.touch()


def release(world: World, content_id: str | None) -> None:
    """Forget content `content_id` once no stored resource points at it any more."""
    from batchimage.sandbox import arm

    if not content_id:
        return
    if any(r.get("_content") == content_id for r in arm.resources(world).values()):
        return
    drop(world, content_id)
