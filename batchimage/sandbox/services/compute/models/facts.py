"""What other sandbox services (the Batch data plane) may ask Compute about an image.

`image_facts(world, image_id)` answers for a gallery image version id, a gallery image
definition id (resolved to its latest version, as Batch does) or a managed image id;
None when no such image exists. `register_in_use_check(check)` lets a service veto the
deletion of a gallery image version: `check(world, version_id)` returns a reason string
while the version is in use (e.g. by a live Batch pool), else None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute.models import content, security

GALLERY_IMAGE = "microsoft.compute/galleries/images"
GALLERY_IMAGE_VERSION = "microsoft.compute/galleries/images/versions"
MANAGED_IMAGE = "microsoft.compute/images"

InUseCheck = Callable[[World, str], "str | None"]
_IN_USE_CHECKS: list[InUseCheck] = []


@dataclass(frozen=True)
class ImageFacts:
    """The facts of one image as the guest and the gallery see them."""

    id: str  # the resource id asked about (version or definition id)
    version_id: str  # resolved gallery image version id (latest for a definition id)
    os_type: str  # "Linux" | "Windows"
    os_state: str  # "Generalized" | "Specialized"
    deprovisioned: bool  # the captured disk was deprovisioned in the guest
    provisioning_state: str  # of the version
    replicated_regions: tuple[str, ...]  # regions whose replication completed
    source: dict[str, str] | None  # marketplace origin {publisher, offer, sku, version}
    manifest: tuple[dict[str, Any], ...]  # customizations recorded on the disk
    extensions: tuple[str, ...]  # VM extensions baked into the image
    subscription_id: str
    security_type: str = "Standard"  # the definition's SecurityType feature


def register_in_use_check(check: InUseCheck) -> None:
    """Add a check consulted before a gallery image version is deleted (idempotent)."""
    if check not in _IN_USE_CHECKS:
        _IN_USE_CHECKS.append(check)


def in_use_reason(world: World, version_id: str) -> str | None:
    """The first registered check's reason why `version_id` cannot be deleted, or None."""
    for check in _IN_USE_CHECKS:
        reason = check(world, version_id)
        if reason:
            return reason
    return None


def _type(record: dict[str, Any] | None) -> str:
    return str((record or {}).get("type", "")).lower()


def version_key(name: str) -> tuple[int, ...]:
    """`1.2.10` -> (1, 2, 10), for ordering gallery image versions numerically."""
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def versions_of(world: World, definition_id: str) -> list[dict[str, Any]]:
    """The stored versions of a gallery image definition, lowest version first."""
    prefix = definition_id.lower() + "/versions/"
    found = [
        r
        for k, r in arm.resources(world).items()
        if k.startswith(prefix) and _type(r) == GALLERY_IMAGE_VERSION
    ]
    return sorted(found, key=lambda r: version_key(r["name"]))


def latest_version(world: World, definition_id: str) -> dict[str, Any] | None:
    """The highest version not excluded from latest (what `.../images/x` means to Batch):
    the highest Succeeded one, else the highest at all (still Creating, or Failed)."""
    eligible = [
        v
        for v in versions_of(world, definition_id)
        if not v["properties"].get("publishingProfile", {}).get("excludeFromLatest", False)
    ]
    ready = [v for v in eligible if v["properties"].get("provisioningState") == "Succeeded"]
    if ready:
        return ready[-1]
    return eligible[-1] if eligible else None


def replicated_regions(record: dict[str, Any]) -> tuple[str, ...]:
    """Regions where the version's replication completed (`_replication` kept per region)."""
    replication: dict[str, Any] = record.get("_replication") or {}
    return tuple(r for r, s in replication.items() if s.get("state") == "Completed")


def _subscription(rid: str) -> str:
    parts = rid.split("/")
    return parts[2] if len(parts) > 2 else ""


def _facts(
    world: World,
    asked: str,
    version: dict[str, Any],
    os_state: str,
    regions: tuple[str, ...],
    definition: dict[str, Any] | None = None,
) -> ImageFacts:
    found = content.of(world, version) or content.normalise({})
    return ImageFacts(
        id=asked,
        version_id=version["id"],
        os_type=found["os_type"],
        os_state=os_state,
        deprovisioned=bool(found["deprovisioned"]),
        provisioning_state=str(version["properties"].get("provisioningState", "")),
        replicated_regions=regions,
        source=dict(found["source"]) if found["source"] else None,
        manifest=tuple(dict(m) for m in found["manifest"]),
        extensions=tuple(found["extensions"]),
        subscription_id=_subscription(version["id"]),
        security_type=security.definition_security(definition),
    )


def image_facts(world: World, image_id: str) -> ImageFacts | None:
    """Facts of the image `image_id` (version, definition = latest version, managed image)."""
    record = arm.get(world, image_id.rstrip("/"))
    kind = _type(record)
    if record is None:
        return None
    if kind == MANAGED_IMAGE:
        os_disk = record["properties"].get("storageProfile", {}).get("osDisk", {})
        state = str(os_disk.get("osState", "Generalized"))
        return _facts(world, image_id, record, state, (record["location"],))
    if kind == GALLERY_IMAGE:
        definition = record
        version = latest_version(world, record["id"])
        if version is None:
            return None
    elif kind == GALLERY_IMAGE_VERSION:
        version = record
        definition = arm.get(world, record["id"].rsplit("/versions/", 1)[0]) or {}
    else:
        return None
    os_state = str(definition.get("properties", {}).get("osState", "Generalized"))
    return _facts(world, image_id, version, os_state, replicated_regions(version), definition)
