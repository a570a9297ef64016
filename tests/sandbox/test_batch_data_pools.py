"""Batch pools through the real azure.batch.BatchClient: create/get/list/exists/delete,
update and replace, conditional requests, `$select`, paging, the real error codes,
supported images, request ids, unknown accounts and shared-key auth."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.sandbox import batch_support
from tests.sandbox.batch_support import HELD, pool_options, wait_steady

batch = batch_support.batch  # fixtures
durations = batch_support.durations


def _code(exc: HttpResponseError) -> str:
    """The Batch error code of an SDK error."""
    assert exc.error is not None
    return str(exc.error.code)


def _details(exc: HttpResponseError) -> dict[str, str]:
    assert exc.error is not None
    return {d.code: d.message for d in exc.error.details}


def _headers(batch: BatchClient, pool_id: str, **kwargs: Any) -> dict[str, Any]:
    found: dict[str, Any] = batch.get_pool(pool_id, cls=lambda _r, _b, h: h, **kwargs)
    return found


def test_supported_images(batch: BatchClient) -> None:
    images = list(batch.list_supported_images())
    by_sku = {(i.image_reference.offer, i.image_reference.sku): i for i in images}
    assert by_sku[("ubuntu-24_04-lts", "server")].node_agent_sku_id == "batch.node.ubuntu 24.04"
    assert by_sku[("ubuntu-22_04-lts", "server")].node_agent_sku_id == "batch.node.ubuntu 22.04"
    alma = by_sku[("almalinux-x86_64", "9-gen2")]
    assert (alma.node_agent_sku_id, alma.image_reference.publisher) == (
        "batch.node.el 9",
        "almalinux",
    )
    for sku in ("2022-datacenter-g2", "2019-datacenter"):
        win = by_sku[("windowsserver", sku)]
        assert win.node_agent_sku_id == "batch.node.windows amd64"
        assert win.os_type == bm.OSType.WINDOWS
    assert all(i.verification_type in ("verified", "unverified") for i in images)
    assert any(i.capabilities for i in images)
    now = dt.datetime.now(dt.UTC)
    ends = [i.batch_support_end_of_life for i in images if i.batch_support_end_of_life]
    assert any(end < now for end in ends), "one image is past its end of support"
    assert any(now < end < now + dt.timedelta(days=90) for end in ends), "one ends soon"
    windows = list(batch.list_supported_images(filter="osType eq 'windows'"))
    assert windows and all(i.os_type == bm.OSType.WINDOWS for i in windows)
    assert len(list(batch.list_supported_images(max_results=2))) == len(images)  # paged


def test_pool_lifecycle(
    batch: BatchClient,
    unique: Callable[[str], str],
    admin: SandboxAdmin,
    durations: Callable[..., None],
) -> None:
    pool_id = unique("pool")
    start = bm.BatchStartTask(command_line="/bin/sh -c 'echo hi'", wait_for_success=True)
    meta = [bm.BatchMetadataItem(name="pipeline", value="demo")]
    batch.create_pool(pool_options(pool_id, start_task=start, metadata=meta))
    pool = batch.get_pool(pool_id)
    assert pool.id == pool_id and pool.state == bm.BatchPoolState.ACTIVE
    assert pool.vm_size == "standard_d2s_v3"
    assert pool.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 24.04"
    assert pool.virtual_machine_configuration.image_reference.version == "latest"
    assert pool.resize_timeout == dt.timedelta(minutes=15)
    assert pool.task_slots_per_node == 1 and pool.start_task.wait_for_success is True
    assert pool.metadata[0].value == "demo" and pool.url.endswith(f"/pools/{pool_id}")
    assert pool.creation_time is not None and pool.etag and pool.etag.startswith("0x")
    headers = _headers(batch, pool_id)
    assert headers["ETag"] == pool.etag and headers["request-id"]
    with pytest.raises(ResourceModifiedError) as same:  # If-None-Match: unchanged -> 304
        batch.get_pool(pool_id, etag=pool.etag, match_condition=MatchConditions.IfModified)
    assert same.value.status_code == 304
    picked = batch.get_pool(pool_id, select=["id", "state"])
    assert picked.id == pool_id and picked.vm_size is None and picked.state == "active"
    assert batch.pool_exists(pool_id) is True
    with pytest.raises(ResourceExistsError) as dup:
        batch.create_pool(pool_options(pool_id))
    assert dup.value.status_code == 409 and _code(dup.value) == "PoolExists"

    durations(**{"pool.delete": HELD})  # deleting until the clock is moved on
    poller = batch.begin_delete_pool(pool_id, polling_interval=0)
    assert batch.get_pool(pool_id).state == bm.BatchPoolState.DELETING
    with pytest.raises(ResourceExistsError) as deleting:
        batch.update_pool(pool_id, bm.BatchPoolUpdateOptions(metadata=[]))
    assert _code(deleting.value) == "PoolBeingDeleted"
    admin.advance(HELD)
    poller.result()
    with pytest.raises(ResourceNotFoundError) as gone:
        batch.get_pool(pool_id)
    assert _code(gone.value) == "PoolNotFound"
    assert gone.value.error is not None
    assert str(gone.value.error.message).startswith(
        "The specified pool does not exist.\nRequestId:"
    )
    with pytest.raises(ResourceNotFoundError):  # HEAD 404 (the SDK raises on it)
        batch.pool_exists(pool_id)


def test_list_filter_and_paging(batch: BatchClient, unique: Callable[[str], str]) -> None:
    prefix = unique("lp")
    ids = [f"{prefix}-{i}" for i in range(3)]
    for pool_id in ids:
        batch.create_pool(pool_options(pool_id))
    found = list(batch.list_pools(filter=f"startswith(id,'{prefix}')", max_results=2))
    assert sorted(p.id for p in found) == ids
    one = list(batch.list_pools(filter=f"id eq '{ids[1]}'", select=["id", "vmSize"]))
    assert [(p.id, p.vm_size, p.state) for p in one] == [(ids[1], "standard_d2s_v3", None)]
    with pytest.raises(HttpResponseError) as bad:
        list(batch.list_pools(filter="length(id) gt 3"))
    assert _code(bad.value) == "InvalidQueryParameterValue"


@pytest.mark.parametrize(
    ("changes", "code", "prop"),
    [
        ({"vm_size": None}, "MissingRequiredProperty", "vmSize"),
        ({"vm_size": "Small"}, "InvalidPropertyValue", "vmSize"),
        ({"id": "bad id!"}, "InvalidPropertyValue", "id"),
        ({"resize_timeout": dt.timedelta(minutes=1)}, "InvalidPropertyValue", "resizeTimeout"),
        ({"task_slots_per_node": 99}, "InvalidPropertyValue", "taskSlotsPerNode"),
        (
            {
                "virtual_machine_configuration": bm.VirtualMachineConfiguration(
                    image_reference=bm.BatchVmImageReference(
                        publisher="canonical", offer="ubuntu-24_04-lts", sku="server"
                    ),
                    node_agent_sku_id="batch.node.nosuch 1",
                )
            },
            "InvalidPropertyValue",
            "virtualMachineConfiguration.nodeAgentSKUId",
        ),
        (
            {"enable_auto_scale": True, "target_dedicated_nodes": 1},
            "InvalidPropertyValue",
            "targetDedicatedNodes",
        ),
    ],
)
def test_create_validation(
    batch: BatchClient, unique: Callable[[str], str], changes: dict[str, Any], code: str, prop: str
) -> None:
    pool_id = changes.pop("id", None) or unique("bad")
    with pytest.raises(HttpResponseError) as bad:
        batch.create_pool(pool_options(pool_id, **changes))
    assert bad.value.status_code == 400 and _code(bad.value) == code
    assert _details(bad.value)["PropertyName"] == prop
    with pytest.raises(ResourceNotFoundError):
        batch.get_pool(pool_id)


def test_update_and_replace(batch: BatchClient, unique: Callable[[str], str]) -> None:
    pool_id = unique("upd")
    batch.create_pool(pool_options(pool_id, target_dedicated_nodes=1))
    before = wait_steady(batch, pool_id)
    task = bm.BatchStartTask(command_line="/bin/true", max_task_retry_count=2)
    batch.update_pool(
        pool_id,
        bm.BatchPoolUpdateOptions(
            start_task=task, metadata=[bm.BatchMetadataItem(name="v", value="2")]
        ),
    )
    after = batch.get_pool(pool_id)
    assert after.start_task.command_line == "/bin/true"
    assert after.start_task.max_task_retry_count == 2
    assert [(m.name, m.value) for m in after.metadata] == [("v", "2")]
    assert after.etag != before.etag and after.vm_size == before.vm_size
    with pytest.raises(ResourceExistsError) as busy:  # vmSize only while the pool is empty
        batch.update_pool(pool_id, bm.BatchPoolUpdateOptions(vm_size="Standard_D4s_v3"))
    assert _code(busy.value) == "OperationInvalidForCurrentState"
    batch.replace_pool_properties(
        pool_id, bm.BatchPoolReplaceOptions(application_package_references=[], metadata=[])
    )
    replaced = batch.get_pool(pool_id)
    assert replaced.start_task is None and not replaced.metadata

    empty = unique("upde")
    batch.create_pool(pool_options(empty))
    wait_steady(batch, empty)
    batch.update_pool(empty, bm.BatchPoolUpdateOptions(vm_size="Standard_D4s_v3"))
    assert batch.get_pool(empty).vm_size == "standard_d4s_v3"
    with pytest.raises(ResourceModifiedError):  # If-Match with a stale ETag -> 412
        batch.update_pool(
            empty,
            bm.BatchPoolUpdateOptions(metadata=[]),
            etag=before.etag,
            match_condition=MatchConditions.IfNotModified,
        )


def test_client_request_id_echoed(batch: BatchClient, unique: Callable[[str], str]) -> None:
    pool_id = unique("rid")
    batch.create_pool(pool_options(pool_id))
    headers = _headers(batch, pool_id, headers={"client-request-id": "c0ffee00-0000-4000-8000-1"})
    assert headers["client-request-id"] == "c0ffee00-0000-4000-8000-1"
    assert headers["request-id"] and headers["Last-Modified"]


def test_unknown_account(clients: AzureClients, sandbox: Connection) -> None:
    other = clients.batch(sandbox.batch_endpoint("nosuchaccount"))
    with pytest.raises(HttpResponseError) as missing:
        list(other.list_pools())
    assert missing.value.status_code == 404
    assert _code(missing.value) == "ResourceNotFound"  # Batch's generic code


def test_shared_key_rejected(sandbox: Connection) -> None:
    key = AzureNamedKeyCredential(sandbox.batch_account, "c2VjcmV0a2V5c2VjcmV0a2V5")
    client = BatchClient(
        f"https://{sandbox.batch_endpoint(sandbox.batch_account)}",
        key,
        connection_verify=sandbox.ca_bundle,
    )
    with pytest.raises(ClientAuthenticationError) as denied:
        list(client.list_pools())
    assert denied.value.status_code == 401
    assert _code(denied.value) == "AuthenticationFailed"
