"""Start tasks through the real BatchClient: exit codes from the sandbox's start-task
rules, waitForSuccess (starttaskfailed vs idle), retries, stdout/stderr node files, and
resource files checked in Azurite like a node downloading them would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from azure.batch import BatchClient
from azure.batch import models as bm
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.connection import Connection
from tests.sandbox import batch_support
from tests.sandbox.batch_support import pool_options, wait_nodes

batch = batch_support.batch  # fixtures
batch_rules = batch_support.batch_rules

FAILING = {
    "match": r"install\.sh",
    "exit_code": 3,
    "stdout": "installing\n",
    "stderr": "E: no foo\n",
}


def _file(batch: BatchClient, pool_id: str, node_id: str, path: str) -> str:
    return b"".join(batch.download_node_file(pool_id, node_id, path)).decode()


def test_start_task_failure_with_wait(
    batch: BatchClient, unique: Callable[[str], str], batch_rules: Callable[..., None]
) -> None:
    batch_rules(start_task_rules=[FAILING])
    pool_id = unique("stf")
    task = bm.BatchStartTask(
        command_line="/bin/bash -c 'sudo ./install.sh'",
        wait_for_success=True,
        max_task_retry_count=1,
    )
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=1, start_task=task))
    (node,) = wait_nodes(batch, pool_id, {"starttaskfailed"}, 1)
    info = node.start_task_info
    assert (info.state, info.exit_code, info.result, info.retry_count) == (
        "completed",
        3,
        "failure",
        1,
    )
    assert info.failure_info.code == "FailureExitCode"
    assert info.failure_info.category == "usererror"
    assert node.start_task.command_line == task.command_line
    assert _file(batch, pool_id, node.id, "startup/stderr.txt") == "E: no foo\n"
    assert _file(batch, pool_id, node.id, "startup/stdout.txt") == "installing\n"
    names = {f.name for f in batch.list_node_files(pool_id, node.id, recursive=True)}
    assert {"startup", "startup/stdout.txt", "startup/stderr.txt"} <= names
    props = batch.get_node_file_properties(pool_id, node.id, "startup/stderr.txt")
    assert props.content_length == len("E: no foo\n") and props.is_directory is False
    counts = {c.pool_id: c for c in batch.list_pool_node_counts()}[pool_id]
    assert counts.dedicated.start_task_failed == 1


def test_start_task_without_wait(
    batch: BatchClient, unique: Callable[[str], str], batch_rules: Callable[..., None]
) -> None:
    batch_rules(start_task_rules=[FAILING])
    pool_id = unique("nowait")
    task = bm.BatchStartTask(command_line="./install.sh", wait_for_success=False)
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=1, start_task=task))

    def finished() -> bm.BatchNode | None:
        nodes = list(batch.list_nodes(pool_id))
        done = nodes and nodes[0].start_task_info and nodes[0].start_task_info.state == "completed"
        return nodes[0] if done else None

    node = batch_support.wait_for(finished, "start task done")
    assert node.state == "idle"  # not waited for: tasks may run although it failed
    assert node.start_task_info.result == "failure" and node.start_task_info.exit_code == 3


def _storage(clients: AzureClients, sandbox: Connection) -> tuple[BlobServiceClient, str]:
    accounts = clients.storage.storage_accounts
    key = accounts.list_keys(sandbox.resource_group, sandbox.storage_account).keys_property[0]
    service = BlobServiceClient(
        sandbox.blob_endpoint(sandbox.storage_account),
        credential={"account_name": sandbox.storage_account, "account_key": key.value},
        connection_verify=sandbox.ca_bundle,
    )
    return service, str(key.value)


def test_resource_files_checked_in_azurite(
    batch: BatchClient,
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
) -> None:
    service, key = _storage(clients, sandbox)
    container = unique("rf")
    service.create_container(container)
    service.get_blob_client(container, "setup.sh").upload_blob(b"echo setup")
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    account = sandbox.storage_account
    read = BlobSasPermissions(read=True)
    blob_sas, nope_sas = (
        generate_blob_sas(account, container, name, account_key=key, permission=read, expiry=expiry)
        for name in ("setup.sh", "nope.sh")
    )
    container_sas = generate_container_sas(
        account,
        container,
        account_key=key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=expiry,
    )
    base = f"{sandbox.blob_endpoint(account)}{container}"
    cases = {
        "ok": [
            bm.ResourceFile(http_url=f"{base}/setup.sh?{blob_sas}", file_path="setup.sh"),
            bm.ResourceFile(storage_container_url=f"{base}?{container_sas}"),
        ],
        "missing": [bm.ResourceFile(http_url=f"{base}/nope.sh?{nope_sas}", file_path="nope.sh")],
        "nosas": [bm.ResourceFile(http_url=f"{base}/setup.sh", file_path="setup.sh")],
    }
    for name, files in cases.items():
        task = bm.BatchStartTask(command_line="/bin/sh setup.sh", resource_files=files)
        batch.create_pool(
            pool_options(f"{container}-{name}", target_dedicated_nodes=1, start_task=task)
        )
    (ok,) = wait_nodes(batch, f"{container}-ok", {"idle"}, 1)
    assert ok.start_task_info.result == "success"
    (missing,) = wait_nodes(batch, f"{container}-missing", {"starttaskfailed"}, 1)
    failure = missing.start_task_info.failure_info
    assert failure.code == "BlobNotFound" and failure.category == "usererror"
    assert {d.name: d.value for d in failure.details}["FilePath"] == "nope.sh"
    assert missing.start_task_info.exit_code is None
    (denied,) = wait_nodes(batch, f"{container}-nosas", {"starttaskfailed"}, 1)
    assert denied.start_task_info.failure_info.code in ("BlobAccessDenied", "BlobNotFound")
