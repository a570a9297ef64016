"""The sandbox's fixed catalogues: marketplace images (`data/marketplace.json`) and VM
sizes (`data/vm_sizes.json`), offered in every listed region. Lookups are
case-insensitive, as Azure's are."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[3] / "data"


@functools.cache
def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def regions() -> list[str]:
    return list(_load("marketplace.json")["regions"])


def offered_in(location: str) -> bool:
    return location.replace(" ", "").lower() in regions()


@dataclass(frozen=True)
class MarketplaceImage:
    """One marketplace image version."""

    publisher: str
    offer: str
    sku: str
    version: str
    data: dict[str, Any]

    @property
    def urn(self) -> str:
        return f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"

    @property
    def plan(self) -> dict[str, str] | None:
        plan: dict[str, str] | None = self.data.get("plan")
        return plan

    @property
    def source(self) -> dict[str, str]:
        return {
            "publisher": self.publisher,
            "offer": self.offer,
            "sku": self.sku,
            "version": self.version,
        }


def images() -> list[dict[str, Any]]:
    return list(_load("marketplace.json")["images"])


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def publishers() -> list[str]:
    return sorted({i["publisher"] for i in images()}, key=str.lower)


def offers(publisher: str) -> list[str]:
    return sorted({i["offer"] for i in images() if _same(i["publisher"], publisher)})


def skus(publisher: str, offer: str) -> list[str]:
    return sorted(
        {
            i["sku"]
            for i in images()
            if _same(i["publisher"], publisher) and _same(i["offer"], offer)
        }
    )


def entry(publisher: str, offer: str, sku: str) -> dict[str, Any] | None:
    for item in images():
        same_offer = _same(item["publisher"], publisher) and _same(item["offer"], offer)
        if same_offer and _same(item["sku"], sku):
            return item
    return None


def disallowed_disk_type(data: dict[str, Any]) -> str:
    """The VM disk type a marketplace image disallows ("Unmanaged" for Gen2 images, "None")."""
    return str((data.get("disallowed") or {}).get("vmDiskType") or "None")


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


def versions(publisher: str, offer: str, sku: str) -> list[str]:
    """Versions of an image SKU, oldest first (empty when the SKU is unknown)."""
    item = entry(publisher, offer, sku)
    return sorted(item["versions"], key=version_key) if item else []


def find(publisher: str, offer: str, sku: str, version: str) -> MarketplaceImage | None:
    """The image version (`latest` resolves to the newest), or None."""
    item = entry(publisher, offer, sku)
    if item is None:
        return None
    known = versions(publisher, offer, sku)
    if version.lower() == "latest":
        chosen = known[-1]
    else:
        chosen = next((v for v in known if v == version), "")
    if not chosen:
        return None
    return MarketplaceImage(item["publisher"], item["offer"], item["sku"], chosen, item)


@dataclass(frozen=True)
class VmSize:
    """A VM size: its quota family and capabilities."""

    name: str
    family: str
    vcpus: int
    memory_gb: float
    hyper_v_generations: str
    premium_io: bool


def sizes() -> list[VmSize]:
    return [
        VmSize(
            s["name"],
            s["family"],
            int(s["vcpus"]),
            float(s["memory_gb"]),
            s["hyper_v_generations"],
            bool(s["premium_io"]),
        )
        for s in _load("vm_sizes.json")["sizes"]
    ]


def size(name: str) -> VmSize | None:
    return next((s for s in sizes() if _same(s.name, name)), None)


def families() -> list[str]:
    return sorted({s.family for s in sizes()})
