"""Batch data-plane roles through the engine: signed in as a principal with only what a new
user has (Owner of the subscription), the tool without its permissions check builds the
image and the pool and then fails in the smoke test with Batch's 403 AuthorizationFailure;
the tool's preflight names the missing data action and the role before anything is
created, and passes once the role is assigned. A Reader is told which role lets it write
the build's resource group."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.errors import SDK_RETRY
from batchimage.core.errors import StepFailedError
from batchimage.engine.result import new_run_id
from batchimage.spec import load_spec
from batchimage.steps.base import RunContext
from batchimage.steps.preflight import run as preflight
from batchimage.steps.preflight.report import Report
from batchimage.ui import CollectSink
from tests.pipeline.test_preflight import failed_preflight
from tests.pools.harness import PoolHarness
from tests.sandbox.principals import principal_profile

SMOKE = {"command_line": "/bin/sh -c 'echo smoke-ok'", "timeout_s": 60}
DATA_ROLE = "Azure Batch Data Contributor"


def with_smoke_test(data: dict[str, Any]) -> None:
    data["pools"][0]["smoke_test"] = SMOKE


def signed_in_as(pools: PoolHarness, tmp: Path, who: dict[str, Any]) -> PoolHarness:
    """The same harness, signed in as principal `who`."""
    return PoolHarness(tmp, principal_profile(pools.cloud, who), pools.admin, pools.conn)


def preflight_report(cloud: CloudProfile, spec_path: Path) -> Report:
    spec = load_spec(spec_path)
    ctx = RunContext(
        pipeline=spec.name,
        run_id=new_run_id(),
        events=CollectSink(),
        clients_factory=lambda: AzureClients(cloud, spec.subscription, **SDK_RETRY),
    )
    return preflight.run_checks(ctx, spec)


def account_scope(pools: PoolHarness) -> str:
    conn = pools.conn
    return (
        f"/subscriptions/{conn.subscription_id}/resourceGroups/{conn.resource_group}"
        f"/providers/Microsoft.Batch/batchAccounts/{conn.batch_account}"
    )


def test_without_the_check_the_smoke_test_is_refused_by_batch(
    pools: PoolHarness,
    tmp_path: Path,
    unique: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = pools.admin.add_principal(unique("owner"))
    theirs = signed_in_as(pools, tmp_path / "owner", owner)
    spec = theirs.spec("quickstart.yaml", with_smoke_test)
    old_checks = [(n, c) for n, c in preflight.CHECKS if n != "permissions"]
    monkeypatch.setattr(preflight, "CHECKS", old_checks)  # the tool before this check
    with pytest.raises(StepFailedError) as failed:
        theirs.apply(spec)
    pool = load_spec(spec).pools[0].id
    assert failed.value.step == f"pool.{pool}.smoke"  # image and pool were made first
    message = str(failed.value)
    assert "AuthorizationFailure" in message
    assert "This request is not authorized to perform this operation." in message
    assert DATA_ROLE in message  # the next action names the role
    assert pools.batch.get_pool(pool).id == pool


def test_preflight_names_the_data_role_before_anything_is_created(
    pools: PoolHarness, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    owner = pools.admin.add_principal(unique("owner"))
    theirs = signed_in_as(pools, tmp_path / "owner", owner)
    spec = theirs.spec("quickstart.yaml", with_smoke_test)
    message = failed_preflight(theirs, spec)
    assert f"FAIL permissions: on batch account {pools.conn.batch_account}, you lack" in message
    jobs = "Microsoft.Batch/batchAccounts/jobs"
    assert f"data actions {jobs}/write, {jobs}/delete (the smoke test of pool" in message
    assert "Owner and Contributor grant no data actions" in message
    assert (
        f'az role assignment create --role "{DATA_ROLE}" --assignee {owner["objectId"]} '
        f"--scope {account_scope(pools)}"
    ) in message

    pools.admin.assign_role(owner["objectId"], DATA_ROLE, account_scope(pools))
    report = preflight_report(theirs.cloud, spec)
    checks = {r.name: r for r in report.results}
    assert checks["permissions"].status == "pass", checks["permissions"].message
    assert f"batch account {pools.conn.batch_account}" in checks["permissions"].message


def test_preflight_tells_a_reader_which_role_writes_the_build_group(
    pools: PoolHarness, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    subscription = f"/subscriptions/{pools.conn.subscription_id}"
    reader = pools.admin.add_principal(
        unique("reader"), roles=[{"role": "Reader", "scope": subscription}]
    )
    theirs = signed_in_as(pools, tmp_path / "reader", reader)
    message = failed_preflight(theirs, theirs.spec("quickstart.yaml"))
    group = pools.conn.resource_group
    vm = "Microsoft.Compute/virtualMachines"
    assert f"on resource group {group}, you lack actions {vm}/write, {vm}/delete" in message
    assert f"--scope {subscription}/resourceGroups/{group}" in message
    assert "assign the built-in role 'Contributor'" in message
    assert "actions Microsoft.Batch/batchAccounts/pools/write, " in message
