"""The default flow end to end on real Azure: image (build VM, customize, generalize,
gallery version) -> a one-node pool in a user-subscription Batch account -> smoke test ->
a zero-change plan -> destroy. Variants: `linux` (default security), `windows`,
`trustedlaunch`; choose with BATCHIMAGE_LIVE_VARIANTS (comma-separated, default `linux`).

Skipped (with the reason) unless BATCHIMAGE_LIVE=1, AZURE_SUBSCRIPTION_ID,
BATCHIMAGE_LIVE_BATCH_ACCOUNT and BATCHIMAGE_LIVE_BATCH_GROUP are set and Azure credentials
work. Everything the test makes lives in a resource group with a unique name, deleted in a
finalizer even when the test fails, and in pools whose ids carry the same unique suffix,
deleted likewise. Roles, time and cost: docs/live-tests.md.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VARIANTS = ("linux", "windows", "trustedlaunch")
REQUIRED = (
    "BATCHIMAGE_LIVE",
    "AZURE_SUBSCRIPTION_ID",
    "BATCHIMAGE_LIVE_BATCH_ACCOUNT",
    "BATCHIMAGE_LIVE_BATCH_GROUP",
)
HOURS = 3600


def _skip_reason() -> str | None:
    """Why the live suite cannot run here, or None when it can."""
    if os.environ.get("BATCHIMAGE_LIVE") != "1":
        return "live Azure tests are opt-in: set BATCHIMAGE_LIVE=1 (see docs/live-tests.md)"
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        return f"live Azure tests need {', '.join(missing)} (see docs/live-tests.md)"
    try:
        from azure.identity import DefaultAzureCredential

        DefaultAzureCredential().get_token("https://management.azure.com/.default")
    except Exception as exc:  # any credential failure means: cannot run here
        return f"live Azure tests need working Azure credentials ({type(exc).__name__})"
    return None


REASON = _skip_reason()
pytestmark = [pytest.mark.live, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def chosen() -> list[str]:
    """The variants BATCHIMAGE_LIVE_VARIANTS asks for (unknown names are an error)."""
    asked = [
        v.strip().lower() for v in os.environ.get("BATCHIMAGE_LIVE_VARIANTS", "linux").split(",")
    ]
    unknown = sorted(set(asked) - set(VARIANTS) - {""})
    if unknown:
        raise pytest.UsageError(f"BATCHIMAGE_LIVE_VARIANTS: unknown {unknown}; known: {VARIANTS}")
    return [v for v in VARIANTS if v in asked]


@dataclass(frozen=True)
class Live:
    """One variant's run: its unique names and spec file."""

    variant: str
    suffix: str
    group: str
    pool_id: str
    spec: Path

    @property
    def state(self) -> Path:
        return self.spec.parent / "state.json"


def variant_spec(variant: str, suffix: str, group: str, pool_id: str) -> dict[str, Any]:
    """The spec of one variant: smallest sizes, one customize step, one node, a smoke test."""
    location = os.environ.get("BATCHIMAGE_LIVE_LOCATION", "eastus")
    vm_size = os.environ.get("BATCHIMAGE_LIVE_VM_SIZE", "Standard_D2s_v5")
    windows = variant == "windows"
    if windows:
        base = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                "sku": "2022-datacenter-smalldisk-g2"}  # fmt: skip
        customize = [{"name": "marker", "powershell": "Set-Content C:\\bi-live.txt 'batchimage'"}]
        smoke = "cmd /c type C:\\bi-live.txt"
    else:
        base = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}
        customize = [{"name": "marker", "shell": "set -eu\necho batchimage > /etc/bi-live\n"}]
        smoke = "/bin/sh -c 'grep -q batchimage /etc/bi-live'"
    definition: dict[str, Any] = {
        "name": f"live-{variant}",
        "publisher": "batchimage",
        "offer": "live",
        "sku": variant,
    }
    if variant == "trustedlaunch":
        definition["security_type"] = "TrustedLaunch"
    return {
        "name": f"bi-live-{variant}-{suffix}",
        "cloud": "AzurePublicCloud",
        "subscription": os.environ["AZURE_SUBSCRIPTION_ID"],
        "location": location,
        "resource_group": group,
        "image": {
            "base": {"marketplace": base},
            "build": {"vm_size": vm_size},
            "customize": customize,
            "capture": {"gallery": {"gallery": f"bilive{suffix}", "definition": definition}},
        },
        "pools": [
            {
                "id": pool_id,
                "batch_account": {
                    "name": os.environ["BATCHIMAGE_LIVE_BATCH_ACCOUNT"],
                    "resource_group": os.environ["BATCHIMAGE_LIVE_BATCH_GROUP"],
                },
                "vm_size": os.environ.get("BATCHIMAGE_LIVE_POOL_VM_SIZE", vm_size),
                "dedicated_nodes": 1,
                "wait_for": "idle",
                "smoke_test": {"command_line": smoke, "timeout_s": 900},
            }
        ],
        "state": {"path": "state.json"},
    }


def batchimage(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, from the repository."""
    return subprocess.run(
        [sys.executable, "-m", "batchimage", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=3 * HOURS,
    )


def _delete_leftovers(live: Live) -> None:
    """Whatever the run left: its pools in the named Batch account, then its group."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.batch import BatchManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    credential = DefaultAzureCredential()
    subscription = os.environ["AZURE_SUBSCRIPTION_ID"]
    batch = BatchManagementClient(credential, subscription)
    account_group = os.environ["BATCHIMAGE_LIVE_BATCH_GROUP"]
    account = os.environ["BATCHIMAGE_LIVE_BATCH_ACCOUNT"]
    for pool in batch.pool.list_by_batch_account(account_group, account):
        if pool.name and live.suffix in pool.name:  # blue/green generations carry it too
            batch.pool.begin_delete(account_group, account, pool.name).result()
    groups = ResourceManagementClient(credential, subscription).resource_groups
    if groups.check_existence(live.group):
        groups.begin_delete(live.group).result()


@pytest.fixture(params=chosen() if REASON is None else VARIANTS[:1])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    """One variant's spec in a new, uniquely named group; every trace deleted afterwards."""
    variant = str(request.param)
    suffix = secrets.token_hex(3)
    group = f"bi-live-{suffix}"
    pool_id = f"bi-live-{variant}-{suffix}"
    spec = tmp_path / f"live-{variant}.yaml"
    spec.write_text(yaml.safe_dump(variant_spec(variant, suffix, group, pool_id), sort_keys=False))
    try:
        yield Live(variant, suffix, group, pool_id, spec)
    finally:
        _delete_leftovers(live=Live(variant, suffix, group, pool_id, spec))


def test_default_flow_end_to_end(live: Live) -> None:
    """validate -> preflight -> apply (image, pool, smoke test) -> output -> plan -> destroy."""
    for command in (["validate"], ["preflight"]):
        done = batchimage(*command, str(live.spec))
        assert done.returncode == 0, done.stdout + done.stderr
    applied = batchimage("apply", str(live.spec), "--yes", "--log-format", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr[-6000:]

    output = batchimage("output", str(live.spec), "--format", "json")
    assert output.returncode == 0, output.stderr
    outputs = json.loads(output.stdout)
    assert "/galleries/" in output.stdout and "/versions/" in output.stdout
    assert live.pool_id in json.dumps(outputs)

    steps = json.loads(live.state.read_text())["steps"]
    assert steps[f"pool.{live.pool_id}.smoke"]["status"] == "done"  # the smoke test passed
    assert steps["cleanup"]["status"] == "done"  # the build VM is gone
    plan = batchimage("plan", str(live.spec))
    assert plan.returncode == 0, plan.stdout + plan.stderr  # 0: no changes

    destroyed = batchimage("destroy", str(live.spec), "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    after = batchimage("plan", str(live.spec))
    assert after.returncode == 2, after.stdout + after.stderr  # everything to create again
