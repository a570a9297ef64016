"""Preflight against the sandbox: each failure names the problem and the next action, is
reported within seconds, and leaves nothing created (zero ARM writes); `batchimage
preflight FILE` prints every check."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.core.errors import PermanentAzureError, PreflightError, StepFailedError
from batchimage.sandbox.connection import Connection
from batchimage.steps.staging import StagingPlaces, staging_account
from tests.pipeline.harness import Harness, preflight_command
from tests.pools.test_pool_quota import batch_service_account


def failed_preflight(pipeline: Harness, spec: Any) -> str:
    """Apply `spec`, expect preflight to fail fast without a single write; the message."""
    pipeline.admin.reset_counters()
    started = time.monotonic()
    with pytest.raises(StepFailedError) as caught:
        pipeline.apply(spec)
    assert time.monotonic() - started < 10
    assert caught.value.step == "preflight"
    assert isinstance(caught.value.__cause__, PreflightError)
    assert pipeline.admin.counters()["writes"] == 0, "preflight must create nothing"
    state = pipeline.state(spec)
    created = [key for key, rec in state.steps.items() if rec.created]
    assert created == []
    return str(caught.value)


def _storage(clients: AzureClients, name: str, kind: str, location: str = "eastus") -> None:
    sku = "Premium_LRS" if kind == "BlockBlobStorage" else "Standard_LRS"
    clients.storage.storage_accounts.begin_create(
        "sandbox-rg", name, {"location": location, "kind": kind, "sku": {"name": sku}}
    ).result()


def _unmanaged_on(account: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["image"]["build"]["os_disk"]["storage_account"] = account
        data["image"]["capture"].pop("vhd_export", None)

    return edit


def test_wrong_storage_kind(
    classic_pipeline: Harness, clients: AzureClients, unique: Callable[[str], str]
) -> None:
    pipeline = classic_pipeline
    account = unique("blk")
    _storage(clients, account, "BlockBlobStorage")
    message = failed_preflight(
        pipeline, pipeline.spec("classic-unmanaged.yaml", _unmanaged_on(account))
    )
    assert f"FAIL storage {account}: is of kind BlockBlobStorage" in message
    assert "general-purpose v2 account (kind StorageV2)" in message


def test_storage_in_another_region(
    classic_pipeline: Harness, clients: AzureClients, unique: Callable[[str], str]
) -> None:
    pipeline = classic_pipeline
    account = unique("weu")
    _storage(clients, account, "StorageV2", location="westeurope")
    message = failed_preflight(
        pipeline, pipeline.spec("classic-unmanaged.yaml", _unmanaged_on(account))
    )
    assert f"FAIL storage {account}: is in westeurope, the pipeline in eastus" in message
    assert "needs an account in eastus" in message


def test_missing_storage_account(classic_pipeline: Harness, unique: Callable[[str], str]) -> None:
    pipeline = classic_pipeline
    account = unique("nope")
    message = failed_preflight(
        pipeline, pipeline.spec("classic-unmanaged.yaml", _unmanaged_on(account))
    )
    assert f"FAIL storage {account}: not found" in message
    assert f"az storage account create --name {account}" in message


def test_classic_flow_on_a_cloud_that_retired_unmanaged_disks(pipeline: Harness) -> None:
    """The classic spec as it ran before, against the sandbox modelling public Azure."""
    message = failed_preflight(pipeline, pipeline.spec("classic-unmanaged.yaml"))
    assert "FAIL os disk: cloud sandbox has retired unmanaged disks" in message
    assert "build on a managed OS disk (image.build.os_disk.type: managed, the default)" in message


def test_classic_flow_from_a_gen2_image(classic_pipeline: Harness) -> None:
    """The classic spec's old base (Ubuntu 24.04, Gen2) disallows unmanaged disks anywhere."""

    def edit(data: dict[str, Any]) -> None:
        data["image"]["base"]["marketplace"]["sku"] = "server"
        data["image"]["capture"]["gallery"]["definition"]["hyper_v_generation"] = "V2"

    message = failed_preflight(
        classic_pipeline, classic_pipeline.spec("classic-unmanaged.yaml", edit)
    )
    assert "FAIL os disk: Canonical:ubuntu-24_04-lts:server:" in message
    assert "disallows unmanaged OS disks (disallowed.vmDiskType: Unmanaged" in message
    assert "pick a Gen1 image for the classic flow" in message


def test_spot_needs_user_subscription_mode(
    pipeline: Harness, clients: AzureClients, unique: Callable[[str], str]
) -> None:
    account = unique("bs")
    clients.batch_management.batch_account.begin_create(
        "sandbox-rg",
        account,
        {"location": "eastus", "properties": {"poolAllocationMode": "BatchService"}},
    ).result()

    def edit(data: dict[str, Any]) -> None:
        pool = data["pools"][0]
        pool["batch_account"]["name"] = account
        pool["spot_nodes"] = 3

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    assert f"FAIL batch account {account}" in message
    assert "need pool allocation mode UserSubscription; this account uses BatchService" in message
    assert "--pool-allocation-mode UserSubscription" in message


def test_unregistered_providers(pipeline: Harness, sandbox: Connection) -> None:
    subscription = str(uuid.uuid4())
    pipeline.admin.add_subscription(subscription, registered=False)

    def edit(data: dict[str, Any]) -> None:
        data["subscription"] = subscription

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    for namespace in ("Microsoft.Compute", "Microsoft.Network", "Microsoft.Batch"):
        command = f"az provider register --namespace {namespace} --subscription {subscription}"
        assert command in message


def test_node_agent_not_offered(pipeline: Harness) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["pools"][0]["node_agent_sku"] = "batch.node.debian 8"

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    assert (
        "FAIL node agent (sandboxbatch): node agent SKU 'batch.node.debian 8' is not offered"
        in message
    )
    assert "batch.node.ubuntu 24.04" in message  # what is offered instead


def test_node_agent_for_another_os(pipeline: Harness) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["pools"][0]["node_agent_sku"] = "batch.node.windows amd64"

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    assert "runs node agent batch.node.ubuntu 24.04, not batch.node.windows amd64" in message


def test_core_quota_short(pipeline: Harness) -> None:
    pipeline.admin.configure(compute={"quota": {"standardDSv5Family": 3}})
    try:
        message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml"))
    finally:
        pipeline.admin.configure(compute={"quota": {}})
    assert "FAIL quota" in message
    assert "the build VM, pool quickstart need 6 vCPUs" in message
    assert "request a quota increase" in message


def test_pool_cores_count_in_the_batch_account_region(
    pipeline: Harness, clients: AzureClients, unique: Callable[[str], str]
) -> None:
    """A user-subscription account's nodes are charged to the subscription's Compute quota
    in the account's region, not the build's: preflight reads usage there (room in eastus,
    where the build runs, proves nothing about a pool in westus)."""
    account = unique("wb")
    group = f"/subscriptions/{clients.subscription_id}/resourceGroups/sandbox-rg"
    storage = f"{group}/providers/Microsoft.Storage"
    clients.batch_management.batch_account.begin_create(
        "sandbox-rg",
        account,
        {
            "location": "westus",
            "properties": {
                "poolAllocationMode": "UserSubscription",
                "autoStorage": {"storageAccountId": f"{storage}/storageAccounts/sandboxstore"},
            },
        },
    ).result()

    def edit(data: dict[str, Any]) -> None:
        data["pools"][0]["batch_account"] = {"name": account, "location": "westus"}

    pipeline.admin.configure(compute={"quota": {"regions": {"westus": {"standardDSv5Family": 3}}}})
    try:
        message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    finally:
        pipeline.admin.configure(compute={"quota": {}})
    assert "FAIL quota Standard DSv5 Family vCPUs in westus: pool " in message
    assert "need 4 vCPUs; 0 of 3 are in use in westus" in message
    assert "FAIL quota Standard DSv5 Family vCPUs:" not in message  # eastus has room
    assert "step preflight failed: 17 passed, 1 failed;" in message  # the one above


def test_pool_vm_size_must_boot_the_image_generation(pipeline: Harness) -> None:
    """Azure relays a Gen1-only size for a Gen2 image as a resize error after the build;
    preflight reads the size's HyperVGenerations and says so first."""

    def edit(data: dict[str, Any]) -> None:
        data["pools"][0]["vm_size"] = "Standard_A1_v2"

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    assert "FAIL vm size Standard_A1_v2: Standard_A1_v2 (pool " in message
    assert "cannot boot Hyper-V generation V2 images (it boots V1)" in message
    assert "pick a size that boots V2 such as Standard_D1_v2" in message


def test_marketplace_image_missing(pipeline: Harness) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["image"]["base"]["marketplace"]["sku"] = "no-such-sku"

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    assert (
        "FAIL base image: Marketplace image Canonical:ubuntu-24_04-lts:no-such-sku does not exist"
        in message
    )
    assert "az vm image list --location eastus --publisher Canonical" in message


def test_hyper_v_generation_mismatch(pipeline: Harness) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["image"]["capture"]["gallery"]["definition"]["hyper_v_generation"] = "V1"

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    assert "is Hyper-V generation V2, the definition asks for V1" in message


def test_preflight_command_prints_every_check(pipeline: Harness, sandbox_folder: Any) -> None:
    spec = pipeline.spec("two-pools.yaml")
    proc = preflight_command(spec, sandbox_folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "ok   credentials: token for Azure Resource Manager obtained" in out
    assert "ok   providers: Microsoft.Compute registered" in out
    assert "ok   base image: almalinux:almalinux-x86_64:9-gen2:" in out
    assert "purchase plan almalinux/almalinux-x86_64/9-gen2 is carried to the definition" in out
    agent = "ok   node agent (sandboxbatch): almalinux:almalinux-x86_64:9-gen2 runs node agent"
    assert f"{agent} batch.node.el 9" in out
    assert "preflight:" in out and "failed" not in out.splitlines()[-1]


def test_file_step_without_a_staging_account(pipeline: Harness) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["pools"] = []  # no Batch account, hence no auto-storage account to stage in

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    assert "FAIL file staging: a file customize step needs a storage account" in message


def test_file_step_whose_auto_storage_account_is_gone(
    pipeline: Harness, clients: AzureClients, unique: Callable[[str], str]
) -> None:
    """The pool's Batch account names an auto-storage account that was deleted since:
    preflight names both accounts, before the build, instead of the customize step failing."""
    store, account = unique("gone"), unique("ba")
    clients.storage.storage_accounts.begin_create(
        "sandbox-rg",
        store,
        {"location": "eastus", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}},
    ).result()
    storage_id = clients.storage.storage_accounts.get_properties("sandbox-rg", store).id
    clients.batch_management.batch_account.begin_create(
        "sandbox-rg",
        account,
        {
            "location": "eastus",
            "properties": {
                "poolAllocationMode": "UserSubscription",
                "autoStorage": {"storageAccountId": storage_id},
            },
        },
    ).result()
    clients.storage.storage_accounts.delete("sandbox-rg", store)

    def edit(data: dict[str, Any]) -> None:
        data["pools"][0]["batch_account"] = {"name": account, "location": "eastus"}

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", edit))
    assert (
        f"FAIL file staging: auto-storage account {store} of Batch account {account} was not found"
        in message
    )


def test_no_staging_account_says_what_each_place_answered(clients: AzureClients) -> None:
    """At run time (past preflight) the error names each place the spec gives and what
    Azure answered for it."""
    places = StagingPlaces(
        accounts=(("nosuchstore", "sandbox-rg"),), batch_accounts=(("sandbox-rg", "nosuchbatch"),)
    )
    with pytest.raises(PermanentAzureError) as none:
        staging_account(SimpleNamespace(clients=clients), places)  # type: ignore[arg-type]
    assert none.value.code == "NoStagingAccount"
    assert (
        "none was found (storage account nosuchstore was not found; Batch account nosuchbatch "
        "was not found in resource group sandbox-rg)"
    ) in str(none.value)


def test_customize_on_a_vhd_base(pipeline: Harness) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["image"]["customize"] = [{"shell": "echo hi"}]
        data["image"].pop("generalize")  # a built image with pools must generalize (validate)

    message = failed_preflight(pipeline, pipeline.spec("vhd-upload.yaml", edit))
    assert "customize steps on a VHD base are not supported yet" in message


def test_preflight_says_unknown_region_before_images_and_sizes(pipeline: Harness) -> None:
    """The sandbox is not the public cloud: validate passes, preflight reads the
    subscription's locations and names the region - not a missing image, size or quota."""

    def typo(data: dict[str, Any]) -> None:
        data["location"] = "eastuss"
        data["image"]["capture"]["gallery"].pop("replicas", None)

    spec = pipeline.spec("quickstart.yaml", typo)
    message = failed_preflight(pipeline, spec)
    assert (
        "FAIL region: unknown region 'eastuss' (location): not a location of subscription "
        "00000000-0000-4000-8000-000000000001; did you mean 'eastus'?"
    ) in message
    assert "1 failed" in message
    for misleading in ("base image", "quota", "vm size", "image definition"):
        assert f"FAIL {misleading}" not in message


def test_every_secret_reference_is_checked_before_anything_is_created(
    pipeline: Harness, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset variable (the build VM's admin password, a customize step's secret_env)
    and an unreadable file stop preflight; nothing is created and no value is shown."""
    monkeypatch.delenv("BI_TEST_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("BI_TEST_TOKEN", "s3cret-token-value")

    def secrets(data: dict[str, Any]) -> None:
        data["image"]["build"]["admin_password"] = {"env": "BI_TEST_ADMIN_PASSWORD"}
        step = data["image"]["customize"][0]
        step["secret_env"] = {
            "TOKEN": {"env": "BI_TEST_TOKEN"},
            "KEY": {"file": str(tmp_path / "missing-key.txt")},
        }

    spec = pipeline.spec("windows-server.yaml", secrets)
    message = failed_preflight(pipeline, spec)
    assert (
        "FAIL secrets: image.build.admin_password: environment variable "
        "BI_TEST_ADMIN_PASSWORD is not set; set it before running again"
    ) in message
    assert (
        "FAIL secrets: image.customize[0].secret_env.KEY: file "
        f"{tmp_path / 'missing-key.txt'} cannot be read (No such file or directory)"
    ) in message
    assert "secret_env.TOKEN" not in message and "s3cret-token-value" not in message


def test_the_checks_read_the_batch_account_once(pipeline: Harness, sandbox_folder: Any) -> None:
    """The Batch account check, the quota check and the staging check share one read."""
    spec = pipeline.spec("quickstart.yaml")
    since = pipeline.admin.counters()["seq"]
    proc = preflight_command(spec, sandbox_folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok   batch pool quota sandboxbatch" in proc.stdout
    reads = [r for r in pipeline.admin.requests(since) if r["operation"] == "BatchAccount_Get"]
    assert len(reads) == 1, reads


def test_a_retention_account_that_does_not_exist(pipeline: Harness) -> None:
    """An account `keep_used_by` names is checked before anything is built: a pool there
    that retention could not see would lose its image."""

    def keep_for_missing(data: dict[str, Any]) -> None:
        gallery = data["image"]["capture"]["gallery"]
        gallery["keep"] = 2
        gallery["keep_used_by"] = [{"name": "nosuchbatch"}]

    message = failed_preflight(pipeline, pipeline.spec("quickstart.yaml", keep_for_missing))
    assert (
        "batch account nosuchbatch (retention): not found in resource group sandbox-rg; fix "
        "image.capture.gallery.keep_used_by"
    ) in message


def test_retention_accounts_are_read_before_anything_is_built(
    pipeline: Harness,
    clients: AzureClients,
    sandbox: Connection,
    sandbox_folder: Any,
    unique: Callable[[str], str],
) -> None:
    """Each `keep_used_by` account is checked once, apart from the pools' own account (its
    group in other letters is the same); one whose pools cannot be listed fails preflight."""
    other = unique("team")
    batch_service_account(clients, sandbox, other)

    def keep_for(data: dict[str, Any]) -> None:
        gallery = data["image"]["capture"]["gallery"]
        gallery["keep"] = 2
        gallery["keep_used_by"] = [
            {"name": other},
            {"name": other, "resource_group": sandbox.resource_group.upper()},
            {"name": "sandboxbatch", "resource_group": sandbox.resource_group.upper()},
        ]

    spec = pipeline.spec("quickstart.yaml", keep_for)
    try:
        shown = preflight_command(spec, sandbox_folder)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        lines = [line for line in shown.stdout.splitlines() if "(retention)" in line]
        assert lines == [
            f"ok   batch account {other} (retention): retention keeps the image versions its "
            "0 pool(s) use"
        ]
        denied = {
            "kind": "status",
            "method": "GET",
            "path": f"/batch/{other}/pools",
            "status": 403,
            "code": "AuthorizationFailure",
            "message": "This request is not authorized to perform this operation.",
        }
        pipeline.admin.set_faults([denied])
        message = failed_preflight(pipeline, spec)
    finally:
        pipeline.admin.clear_faults()
        clients.batch_management.batch_account.begin_delete(sandbox.resource_group, other).result()
    assert f"batch account {other} (retention): retention cannot read it or list its pools" in (
        message
    )
    assert "AuthorizationFailure" in message
    assert "remove it from image.capture.gallery.keep_used_by" in message
