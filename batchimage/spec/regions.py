"""Azure region names: the public cloud's regions (`batchimage/data/azure_public_regions.json`,
with its source), and the words for a name that is not one ("unknown region ...; did you mean").

    public_regions()["eastus"] -> "East US"
    unknown_region("eastuss", public_regions()) -> "unknown region 'eastuss'; did you mean ..."
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PUBLIC_FILE = Path(__file__).resolve().parents[1] / "data" / "azure_public_regions.json"


@cache
def public_regions() -> dict[str, str]:
    """The Azure public cloud's regions: programmatic name -> display name."""
    regions: dict[str, str] = json.loads(PUBLIC_FILE.read_text())["regions"]
    return regions


def region_key(value: str) -> str:
    """A region's programmatic name, as ARM reads a display name ('East US' -> 'eastus')."""
    return value.replace(" ", "").lower()


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The known region name closest to `name` (a likely misspelling), or None."""
    found = difflib.get_close_matches(region_key(name), list(known), n=1, cutoff=0.75)
    return found[0] if found else None


def unknown_region(name: str, known: Iterable[str], where: str = "", otherwise: str = "") -> str:
    """ "unknown region '<name>' <where>; did you mean '<nearest>'?", or `otherwise` after
    the "; " when no known name is near."""
    guess = nearest(name, known)
    hint = f"did you mean '{guess}'?" if guess else otherwise
    return (
        f"unknown region '{name}'" + (f" {where}" if where else "") + (f"; {hint}" if hint else "")
    )
