"""Marketplace image versions their publisher deprecates (docs/azure-behaviours.md,
"Marketplace image versions"): scheduled for deprecation on a date, with an alternative,
then deprecated.

A version scheduled for deprecation is served as usual, its `imageDeprecationStatus` saying
`ScheduledForDeprecation`, the date and the alternative; from that date on (simulated
clock) it is `Deprecated`: reading it answers 404 `ImageVersionDeprecated`, and so does a
VM made from it. A test marks a version with `SandboxAdmin.deprecate_image`.

    mark(world, "Canonical", "ubuntu-24_04-lts", "server", "24.04.202511050",
         state="ScheduledForDeprecation", scheduled="2026-03-01T00:00:00+00:00",
         alternative={"type": "Offer", "value": "ubuntu-26_04-lts"})
    status(world, "Canonical", "ubuntu-24_04-lts", "server", "24.04.202511050")
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute.models import published

TABLE = "marketplace_deprecations"
STATES = ("Active", "ScheduledForDeprecation", "Deprecated")
ALTERNATIVE_TYPES = ("None", "Offer", "Plan")


def _key(publisher: str, offer: str, sku: str, version: str) -> str:
    return ":".join((publisher, offer, sku, version)).lower()


def mark(
    world: World,
    publisher: str,
    offer: str,
    sku: str,
    version: str,
    *,
    state: str,
    scheduled: str | None = None,
    alternative: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Give a listed version a deprecation status (`Active` forgets it); ValueError for a
    version not listed, an unknown state or alternative type, or a schedule without a
    date."""
    if published.find(world, publisher, offer, sku, version) is None:
        raise ValueError(f"{publisher}:{offer}:{sku} lists no version {version}")
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    if state == "ScheduledForDeprecation" and not scheduled:
        raise ValueError("a ScheduledForDeprecation version needs scheduledDeprecationTime")
    if scheduled:
        _time(scheduled)
    if alternative and alternative.get("type") not in ALTERNATIVE_TYPES:
        raise ValueError(f"alternativeOption.type must be one of {', '.join(ALTERNATIVE_TYPES)}")
    table = world.store.table(TABLE)
    key = _key(publisher, offer, sku, version)
    if state == "Active":
        table.pop(key, None)
        world.store.touch()
        return {"imageState": "Active"}
    record: dict[str, Any] = {"imageState": state}
    if scheduled:
        record["scheduledDeprecationTime"] = scheduled
    if alternative:
        record["alternativeOption"] = {"type": alternative["type"], "value": alternative["value"]}
    table[key] = record
    world.store.touch()
    return record


def forget(world: World, publisher: str, offer: str, sku: str, version: str) -> None:
    """Drop a version's deprecation status (when it is withdrawn)."""
    if world.store.table(TABLE).pop(_key(publisher, offer, sku, version), None) is not None:
        world.store.touch()


def status(world: World, publisher: str, offer: str, sku: str, version: str) -> dict[str, Any]:
    """The version's `imageDeprecationStatus` now: a schedule whose date has come is
    `Deprecated`."""
    record = world.store.table(TABLE).get(_key(publisher, offer, sku, version))
    if record is None:
        return {"imageState": "Active"}
    out = dict(record)
    when = str(out.get("scheduledDeprecationTime") or "")
    due = bool(when) and _time(when).timestamp() <= world.clock.now()
    if out["imageState"] == "ScheduledForDeprecation" and due:
        out["imageState"] = "Deprecated"
    return out


def deprecated(world: World, publisher: str, offer: str, sku: str, version: str) -> bool:
    """Whether the version is deprecated now."""
    return status(world, publisher, offer, sku, version)["imageState"] == "Deprecated"


def read_refused(publisher: str, offer: str, sku: str, version: str) -> ApiError:
    """Reading a deprecated version (VirtualMachineImages_Get)."""
    return ApiError(
        404,
        "ImageVersionDeprecated",
        f"VM Image from publisher: {publisher} with - Offer: {offer}, Sku: {sku}, Version: "
        f"{version} is deprecated.",
    )


def vm_refused(urn: str) -> ApiError:
    """A VM made from a deprecated version."""
    return ApiError(
        404,
        "ImageVersionDeprecated",
        f"The platform image '{urn}' is deprecated.",
        target="imageReference",
    )


def _time(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"scheduledDeprecationTime {value!r} is not an ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
