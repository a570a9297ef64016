"""What the sandbox's Batch service offers: the supported-images catalogue (node agent
SKU ids per marketplace image, from `sandbox/data/batch_supported_images.json`) and VM
sizes (vCPUs and quota family)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from batchimage.sandbox.services.batch_data.wire import stamp
from batchimage.sandbox.services.compute.models import catalog as compute_catalog

DATA = Path(__file__).resolve().parents[3] / "data" / "batch_supported_images.json"
WINDOWS_AGENT = "batch.node.windows amd64"


@lru_cache(maxsize=1)
def _entries() -> tuple[dict[str, Any], ...]:
    data = json.loads(DATA.read_text())
    return tuple(data["value"])


def supported_images(now: float) -> list[dict[str, Any]]:
    """The catalogue as the service returns it (relative end-of-life dates resolved)."""
    out = []
    for entry in _entries():
        item = copy.deepcopy(entry)
        days = item.pop("endOfLifeInDays", None)
        if days is not None:
            item["batchSupportEndOfLife"] = stamp(now + float(days) * 86400)[:10] + "T00:00:00Z"
        out.append(item)
    return out


def agent_ids() -> set[str]:
    return {e["nodeAgentSKUId"].lower() for e in _entries()}


def agent_os(agent_id: str) -> str:
    """ "windows" or "linux": the OS family a node agent SKU id is for."""
    return "windows" if agent_id.lower() == WINDOWS_AGENT else "linux"


def agent_for(source: dict[str, str] | None) -> str | None:
    """The node agent SKU id the catalogue gives a marketplace image (publisher, offer, sku)."""
    if not source:
        return None
    want = tuple(str(source.get(k, "")).lower() for k in ("publisher", "offer", "sku"))
    for entry in _entries():
        ref = entry["imageReference"]
        if tuple(str(ref[k]).lower() for k in ("publisher", "offer", "sku")) == want:
            return str(entry["nodeAgentSKUId"])
    return None


@dataclass(frozen=True)
class VmSize:
    """A VM size's vCPUs and the quota family it counts against."""

    name: str
    cores: int
    family: str


_SIZE = re.compile(r"standard_(?P<family>[a-z]+)(?P<cores>\d+)(?P<extra>[a-z-]*)(?:_v(?P<v>\d+))?")
_FAMILY_NAMES = {
    ("a", "", ""): "standardA0_A7Family",
    ("d", "s", "3"): "standardDSv3Family",
    ("d", "", "3"): "standardDv3Family",
    ("d", "", "4"): "standardDv4Family",
    ("d", "s", "4"): "standardDSv4Family",
    ("d", "", "5"): "standardDv5Family",
    ("d", "s", "5"): "standardDSv5Family",
    ("e", "", "5"): "standardEv5Family",
    ("e", "s", "5"): "standardESv5Family",
    ("f", "s", "2"): "standardFSv2Family",
    ("nc", "", ""): "standardNCFamily",
}


def vm_size(name: str) -> VmSize | None:
    """Cores and quota family of an Azure VM size name (`Standard_D2s_v3`): the Compute
    catalogue's (what resource SKUs report), else read from the name; None if not one."""
    known = compute_catalog.size(name.strip())
    if known is not None:
        return VmSize(known.name.lower(), known.vcpus, known.family)
    m = _SIZE.fullmatch(name.strip().lower())
    if not m:
        return None
    family, extra, version = m.group("family"), m.group("extra"), m.group("v") or ""
    premium = "s" if "s" in extra else ""
    quota_family = _FAMILY_NAMES.get((family, premium, version)) or (
        f"standard{family.upper()}{premium.upper()}{'v' + version if version else ''}Family"
    )
    return VmSize(name.lower(), int(m.group("cores")), quota_family)
