"""The quickstart-like pipeline against real Azure: apply (build VM, customize, generalize,
capture to a new gallery), a zero-change plan, then destroy. Skipped unless BATCHIMAGE_LIVE=1
and Azure credentials (AZURE_SUBSCRIPTION_ID + `az login` or a service principal) are set.
See docs/image-pipeline.md ("Try it against real Azure")."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
REASON = (
    "live Azure test: set BATCHIMAGE_LIVE=1 and Azure credentials (AZURE_SUBSCRIPTION_ID plus "
    "`az login` or AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET) to run it"
)


def _credentials_work() -> bool:
    try:
        from azure.identity import DefaultAzureCredential

        DefaultAzureCredential().get_token("https://management.azure.com/.default")
    except Exception:
        return False
    return True


pytestmark = pytest.mark.skipif(
    os.environ.get("BATCHIMAGE_LIVE") != "1"
    or not os.environ.get("AZURE_SUBSCRIPTION_ID")
    or not _credentials_work(),
    reason=REASON,
)


def batchimage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchimage", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=3 * 3600,
    )


@pytest.fixture
def live_spec(tmp_path: Path) -> Iterator[Path]:
    """A quickstart-like spec in a new resource group, deleted afterwards whatever happens."""
    suffix = secrets.token_hex(3)
    group = f"bi-live-{suffix}"
    spec = {
        "name": f"bi-live-{suffix}",
        "cloud": "AzurePublicCloud",
        "subscription": os.environ["AZURE_SUBSCRIPTION_ID"],
        "location": os.environ.get("BATCHIMAGE_LIVE_LOCATION", "eastus"),
        "resource_group": group,
        "image": {
            "base": {
                "marketplace": {
                    "publisher": "Canonical",
                    "offer": "ubuntu-24_04-lts",
                    "sku": "server",
                }
            },
            "build": {"vm_size": os.environ.get("BATCHIMAGE_LIVE_VM_SIZE", "Standard_D2s_v5")},
            "customize": [
                {
                    "name": "marker",
                    "shell": "set -eu\necho 'built by batchimage live test' > /etc/bi-live\n",
                }
            ],
            "capture": {
                "gallery": {
                    "gallery": f"bilive{suffix}",
                    "definition": {
                        "name": "live-ubuntu",
                        "publisher": "batchimage",
                        "offer": "live",
                        "sku": "ubuntu-24-04",
                        "security_type": "TrustedLaunchSupported",
                    },
                }
            },
        },
        "state": {"path": str(tmp_path / "state.json")},
    }
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    yield path
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    client = ResourceManagementClient(DefaultAzureCredential(), spec["subscription"])
    if client.resource_groups.check_existence(group):
        client.resource_groups.begin_delete(group).result()


def test_quickstart_against_azure(live_spec: Path) -> None:
    preflight = batchimage("preflight", str(live_spec))
    assert preflight.returncode == 0, preflight.stdout + preflight.stderr
    applied = batchimage("apply", str(live_spec), "--yes", "--log-format", "json")
    assert applied.returncode == 0, applied.stdout + applied.stderr[-4000:]
    output = batchimage("output", str(live_spec), "--format", "json")
    assert output.returncode == 0, output.stderr
    assert "/galleries/" in output.stdout and "/versions/1.0.0" in output.stdout
    state = json.loads((live_spec.parent / "state.json").read_text())
    assert state["steps"]["cleanup"]["status"] == "done"
    plan = batchimage("plan", str(live_spec))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    destroyed = batchimage("destroy", str(live_spec), "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
