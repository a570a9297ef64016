"""Marketplace image versions published over (simulated) time, on top of the fixed catalogue.

Publishers add versions to a SKU as they release them (a monthly Windows Server build, a
Canonical daily); `latest` then means the new one. A test publishes a version with
`SandboxAdmin.publish_image`: it joins the catalogue's versions of that SKU, with that
SKU's properties (OS, generation, plan, features), from the simulated moment `at` on.

    publish(world, "Canonical", "ubuntu-24_04-lts", "server", "24.04.202511050")
    versions(world, "Canonical", "ubuntu-24_04-lts", "server")   # oldest first
    find(world, "Canonical", "ubuntu-24_04-lts", "server", "latest")

The published versions are a table of the world (`marketplace_published`): saved with it,
seen again after a restart, forgotten by `reset`.
"""

from __future__ import annotations

import re
from typing import Any

from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute.models import catalog

TABLE = "marketplace_published"
# Marketplace image versions are three dot-separated numbers (Major.Minor.Build).
VERSION = re.compile(r"^\d{1,10}\.\d{1,10}\.\d{1,15}$")


def _key(publisher: str, offer: str, sku: str, version: str) -> str:
    return ":".join((publisher, offer, sku, version)).lower()


def publish(
    world: World, publisher: str, offer: str, sku: str, version: str, *, after_s: float = 0.0
) -> dict[str, Any]:
    """Publish `version` of a catalogue SKU, visible `after_s` simulated seconds from now
    (idempotent: publishing it again keeps the first record). ValueError for a SKU the
    catalogue does not have or a version that is not Major.Minor.Build."""
    item = catalog.entry(publisher, offer, sku)
    if item is None:
        raise ValueError(f"no marketplace SKU {publisher}:{offer}:{sku} in the catalogue")
    if not VERSION.match(version):
        raise ValueError(f"version {version!r} is not Major.Minor.Build (e.g. 24.04.202511050)")
    if after_s < 0:
        raise ValueError("after_s must not be negative")
    table = world.store.table(TABLE)
    key = _key(item["publisher"], item["offer"], item["sku"], version)
    if key not in table:
        table[key] = {
            "publisher": item["publisher"],
            "offer": item["offer"],
            "sku": item["sku"],
            "version": version,
            "at": world.clock.due(after_s),
        }
        world.store.touch()
    record: dict[str, Any] = table[key]
    return record


def withdraw(world: World, publisher: str, offer: str, sku: str, version: str) -> bool:
    """Forget a published version (the catalogue's own stay); False when it was not published."""
    table = world.store.table(TABLE)
    if table.pop(_key(publisher, offer, sku, version), None) is None:
        return False
    world.store.touch()
    return True


def published(world: World) -> list[dict[str, Any]]:
    """Every published version, visible yet or not, by SKU then version."""
    records = list(world.store.table(TABLE).values())
    return sorted(
        records,
        key=lambda r: (
            _key(r["publisher"], r["offer"], r["sku"], ""),
            catalog.version_key(r["version"]),
        ),
    )


def versions(world: World, publisher: str, offer: str, sku: str) -> list[str]:
    """The SKU's versions now: the catalogue's and those published by now, oldest first
    (Azure lists them by version); empty when the catalogue has no such SKU."""
    known = catalog.versions(publisher, offer, sku)
    if not known:
        return []
    now = world.clock.now()
    wanted = _key(publisher, offer, sku, "")
    more = [
        r["version"]
        for r in world.store.table(TABLE).values()
        if _key(r["publisher"], r["offer"], r["sku"], "") == wanted and r["at"] <= now
    ]
    return sorted(set(known) | set(more), key=catalog.version_key)


def find(
    world: World, publisher: str, offer: str, sku: str, version: str
) -> catalog.MarketplaceImage | None:
    """The image version now (`latest`: the newest), with its SKU's properties; or None."""
    item = catalog.entry(publisher, offer, sku)
    known = versions(world, publisher, offer, sku)
    if item is None or not known:
        return None
    chosen = known[-1] if version.lower() == "latest" else version
    if chosen not in known:
        return None
    return catalog.MarketplaceImage(item["publisher"], item["offer"], item["sku"], chosen, item)
