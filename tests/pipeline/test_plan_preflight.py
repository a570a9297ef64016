"""`batchimage plan` as a real subprocess against the sandbox lists every preflight check
(ok / WARN / FAIL, the preflight command's lines) under the preflight step, and as a
structured list in `--format json`; `--offline` says the checks did not run; a failed
check still stops the plan with exit 1 and the located message."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from batchimage.azure.clients import AzureClients
from tests import forkserver
from tests.engine.procs import REPO, child_env
from tests.pipeline.harness import Harness


def plan(sandbox_folder: Path, spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(BATCHIMAGE_SANDBOX_DIR=str(sandbox_folder))
    return forkserver.run(["plan", str(spec), *args], cwd=REPO, env=env, timeout=120)


def export_to(account: str) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["image"]["capture"]["vhd_export"] = {"storage_account": account, "container": "vhds"}

    return edit


def test_plan_lists_every_check_with_a_warning(
    pipeline: Harness, clients: AzureClients, sandbox_folder: Path, unique: Any
) -> None:
    # A VHD export account in another region is allowed, with a warning.
    account = unique("weu")
    clients.storage.storage_accounts.begin_create(
        "sandbox-rg",
        account,
        {"location": "westeurope", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}},
    ).result()
    spec = pipeline.spec("quickstart.yaml", export_to(account))
    warning = (
        f"WARN storage {account}: is in westeurope, the pipeline in eastus; the VHD export "
        "is faster with an account in eastus (same subscription and region)"
    )

    text = plan(sandbox_folder, spec)
    assert text.returncode == 2, text.stdout + text.stderr  # changes pending, no failure
    lines = text.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[2:3] == ["preflight"])
    block = [line.strip() for line in lines[at + 1 :]]
    assert block[0] == "ok   credentials: token for Azure Resource Manager obtained"
    summary = next(i for i, line in enumerate(block) if line.startswith("preflight: "))
    checks = block[:summary]
    assert all(line.startswith(("ok   ", "WARN ", "FAIL ")) for line in checks), checks
    assert "ok   providers: Microsoft.Compute registered" in checks
    assert warning in checks, "\n".join(checks)
    assert any(line.startswith("ok   node agent (sandboxbatch): ") for line in checks)
    assert block[summary] == f"preflight: {len(checks) - 1} passed, 1 warning"
    assert lines[at + 1 + summary + 1].split()[2] == "resolve_image"  # the plan goes on

    doc = plan(sandbox_folder, spec, "--format", "json")
    assert doc.returncode == 2, doc.stdout + doc.stderr
    preflight = json.loads(doc.stdout)["preflight"]
    assert preflight["ran"] is True and preflight["failed"] is False
    assert preflight["summary"] == f"{len(checks) - 1} passed, 1 warning"
    assert [c["status"] for c in preflight["checks"]].count("pass") == len(checks) - 1
    assert {
        "name": f"storage {account}",
        "status": "warn",
        "message": warning.split(": ", 1)[1],
    } in preflight["checks"]
    assert len(preflight["checks"]) == len(checks)


def test_offline_plan_says_preflight_did_not_run(pipeline: Harness, sandbox_folder: Path) -> None:
    spec = pipeline.spec("quickstart.yaml")
    text = plan(sandbox_folder, spec, "--offline")
    assert text.returncode == 2, text.stdout + text.stderr
    assert "preflight: not run (--offline: the checks need Azure)" in text.stdout
    assert "ok   " not in text.stdout

    doc = plan(sandbox_folder, spec, "--offline", "--format", "json")
    preflight = json.loads(doc.stdout)["preflight"]
    assert preflight == {
        "ran": False,
        "reason": "not run (--offline: the checks need Azure)",
        "checks": [],
    }


def test_failed_check_stops_the_plan(pipeline: Harness, sandbox_folder: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["pools"][0]["node_agent_sku"] = "batch.node.debian 8"

    proc = plan(sandbox_folder, pipeline.spec("quickstart.yaml", edit))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: step preflight failed: 15 passed, 1 failed; nothing was created:" in proc.stderr
    assert proc.stderr.count("1 failed") == 1  # said once
    assert (
        "FAIL node agent (sandboxbatch): node agent SKU 'batch.node.debian 8' is not offered"
        in proc.stderr
    )
    assert (
        proc.stderr.splitlines()[-1] == "  next: fix what the FAIL lines say, then run plan again"
    )
    assert "plan for" not in proc.stdout
