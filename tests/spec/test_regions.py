"""Regions at validate: a public-cloud spec names public Azure regions (the packaged,
sourced list), an unknown one is said as such with the nearest name; `validate` runs as a
real subprocess. Other clouds' regions are preflight's (tests/pipeline/test_preflight.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from batchimage.spec.regions import PUBLIC_FILE, public_regions, unknown_region
from tests.spec.test_cli import run

from .conftest import MINIMAL

POOL = """
pools:
  - id: work
    batch_account: {name: acct, location: westeurop}
    vm_size: Standard_D2s_v5
    dedicated_nodes: 1
"""


def test_unknown_public_region_is_refused_at_validate(write_spec: Callable[..., Path]) -> None:
    path = write_spec(MINIMAL.replace("location: eastus", "location: eastuss") + POOL)
    done = run("validate", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert (
        f"{path}:3:11: location: unknown region 'eastuss' in the Azure public cloud; "
        "did you mean 'eastus'?"
    ) in lines
    assert any(
        "pools[0].batch_account.location: unknown region 'westeurop' in the Azure public "
        "cloud; did you mean 'westeurope'?" in line
        for line in lines
    ), lines


def test_display_names_and_every_listed_region_are_accepted(
    write_spec: Callable[..., Path],
) -> None:
    path = write_spec(MINIMAL.replace("location: eastus", "location: East US 2"))
    assert run("validate", str(path)).returncode == 0
    path = write_spec(MINIMAL.replace("location: eastus", "location: swedencentral"), "b.yaml")
    assert run("validate", str(path)).returncode == 0


def test_other_clouds_leave_regions_to_preflight(write_spec: Callable[..., Path]) -> None:
    text = MINIMAL.replace("location: eastus", "location: usgovvirginia")
    path = write_spec("cloud: AzureUSGovernment\n" + text)
    assert run("validate", str(path)).returncode == 0


def test_the_region_list_has_its_source_and_public_regions_only() -> None:
    data = json.loads(PUBLIC_FILE.read_text())
    assert "learn.microsoft.com" in data["source"]
    regions = public_regions()
    assert {"eastus", "westeurope", "japaneast", "brazilsouth"} <= set(regions)
    assert not [name for name in regions if name.startswith(("usgov", "china"))]
    assert all(name == name.lower().replace(" ", "") for name in regions)
    assert unknown_region("mars", regions, otherwise="list them") == (
        "unknown region 'mars'; list them"
    )
