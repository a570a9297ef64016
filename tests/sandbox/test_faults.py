"""Fault injection and the latency model, seen through the real SDK clients: 429 with
Retry-After retried, 500 retried then surfaced, dropped connections retried, slow
responses, operations ending Failed, seeded determinism, and the time scale."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network.models import AddressSpace, PublicIPAddress, VirtualNetwork

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.sandbox.conftest import TEST_TIME_SCALE


@pytest.fixture
def group(clients: AzureClients, unique: Callable[[str], str]) -> str:
    name = unique("rgf")
    clients.resource.resource_groups.create_or_update(name, {"location": "eastus"})
    return name


def _fast(clients: AzureClients, **kwargs: object) -> AzureClients:
    """Clients whose retry back-off is short (the retry count stays the SDK's unless given)."""
    return AzureClients(
        clients.profile, credential=clients.credential, retry_backoff_factor=0.01, **kwargs
    )


def _requests(admin: SandboxAdmin, seq: int, path_end: str) -> list[dict[str, object]]:
    return [
        r for r in admin.requests(since=seq) if str(r["path"]).lower().endswith(path_end.lower())
    ]


def test_429_with_retry_after_is_retried(
    clients: AzureClients, admin: SandboxAdmin, group: str
) -> None:
    admin.set_faults(
        [
            {
                "kind": "status",
                "status": 429,
                "retry_after": 1,
                "method": "GET",
                "path": f"/resourcegroups/{group}$",
                "nth": 1,
            }
        ]
    )
    seq = admin.counters()["seq"]
    started = time.monotonic()
    assert clients.resource.resource_groups.get(group).name == group
    assert time.monotonic() - started >= 1.0  # the SDK waited as Retry-After said
    seen = _requests(admin, seq, f"/resourcegroups/{group}")
    assert [r["status"] for r in seen] == [429, 200]
    assert seen[0]["fault"] == "status"


def test_500_is_retried_then_surfaced(
    clients: AzureClients, admin: SandboxAdmin, group: str
) -> None:
    admin.set_faults(
        [
            {
                "kind": "status",
                "status": 500,
                "method": "GET",
                "path": f"/resourcegroups/{group}$",
                "nth": 1,
            }
        ]
    )
    assert _fast(clients).resource.resource_groups.get(group).name == group
    admin.set_faults(
        [{"kind": "status", "status": 503, "method": "GET", "path": f"/resourcegroups/{group}$"}]
    )
    with pytest.raises(HttpResponseError) as err:
        _fast(clients, retry_total=2).resource.resource_groups.get(group)
    assert err.value.status_code == 503
    assert err.value.error is not None and err.value.error.code == "ServiceUnavailable"
    assert admin.faults()["rules"][0]["fired"] == 3  # first try + 2 retries


def test_dropped_connection_is_retried(
    clients: AzureClients, admin: SandboxAdmin, group: str
) -> None:
    admin.set_faults(
        [{"kind": "drop", "method": "GET", "path": f"/resourcegroups/{group}$", "nth": 1}]
    )
    seq = admin.counters()["seq"]
    assert _fast(clients).resource.resource_groups.get(group).name == group
    seen = _requests(admin, seq, f"/resourcegroups/{group}")
    assert [r["fault"] for r in seen] == ["drop", None]


def test_slow_response(clients: AzureClients, admin: SandboxAdmin, group: str) -> None:
    admin.set_faults(
        [{"kind": "delay", "delay": 0.4, "method": "GET", "path": f"/resourcegroups/{group}$"}]
    )
    started = time.monotonic()
    clients.resource.resource_groups.get(group)
    assert time.monotonic() - started >= 0.4


def test_operation_ends_failed(clients: AzureClients, admin: SandboxAdmin, group: str) -> None:
    admin.set_faults(
        [
            {
                "kind": "lro_fail",
                "method": "PUT",
                "path": "/publicIPAddresses/doomed$",
                "code": "InternalExecutionError",
                "message": "An internal execution error occurred. Please retry later.",
            }
        ]
    )
    pips = clients.network.public_ip_addresses
    with pytest.raises(HttpResponseError) as err:
        pips.begin_create_or_update(group, "doomed", PublicIPAddress(location="eastus")).result()
    assert err.value.error is not None and err.value.error.code == "InternalExecutionError"
    assert pips.get(group, "doomed").provisioning_state == "Failed"
    admin.clear_faults()
    retried = pips.begin_create_or_update(
        group, "doomed", PublicIPAddress(location="eastus")
    ).result()
    assert retried.provisioning_state == "Succeeded"


def test_rate_faults_are_deterministic_with_a_seed(
    clients: AzureClients, admin: SandboxAdmin, group: str
) -> None:
    once = _fast(clients, retry_total=0).resource.resource_groups

    def pattern() -> list[bool]:
        admin.set_faults(
            [
                {
                    "kind": "status",
                    "status": 500,
                    "rate": 0.5,
                    "method": "GET",
                    "path": f"/resourcegroups/{group}$",
                }
            ],
            seed=42,
        )
        out = []
        for _ in range(16):
            try:
                once.get(group)
                out.append(True)
            except HttpResponseError:
                out.append(False)
        return out

    first = pattern()
    assert first == pattern()
    assert 0 < first.count(False) < 16


def test_time_scale_and_clock(
    clients: AzureClients, admin: SandboxAdmin, sandbox: Connection, group: str
) -> None:
    scale = float(TEST_TIME_SCALE)
    assert admin.clock()["scale"] == pytest.approx(scale)
    vnet = VirtualNetwork(
        location="eastus", address_space=AddressSpace(address_prefixes=["10.0.0.0/16"])
    )
    admin.configure(durations={"network.create": 1.5 / scale})  # 1.5 s of wall time
    try:
        started = time.monotonic()
        clients.network.virtual_networks.begin_create_or_update(group, "timed", vnet).result()
        took = time.monotonic() - started
        assert 1.5 <= took < 60  # never sooner; later only on a machine under load
        admin.configure(durations={"network.create": 3_600_000.0})  # an hour of wall time
        poller = clients.network.virtual_networks.begin_create_or_update(group, "later", vnet)
        assert clients.network.virtual_networks.get(group, "later").provisioning_state == "Updating"
        admin.advance(3_600_000.0)
        assert poller.result().provisioning_state == "Succeeded"
    finally:
        admin.configure(durations={"network.create": 5.0})


def test_missing_api_version_is_refused(sandbox: Connection, clients: AzureClients) -> None:
    import requests

    token = clients.credential.get_token(sandbox.arm_scope).token
    url = f"{sandbox.arm_endpoint}/subscriptions/{sandbox.subscription_id}/resourcegroups"
    answer = requests.get(
        url, headers={"Authorization": f"Bearer {token}"}, verify=sandbox.ca_bundle, timeout=10
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "MissingApiVersionParameter"
    assert answer.headers["x-ms-correlation-request-id"]


def test_unknown_operation_is_not_found(sandbox: Connection, clients: AzureClients) -> None:
    """An operation id ARM does not know: 404 NotFound (ARM publishes no other code for it)."""
    import requests

    token = clients.credential.get_token(sandbox.arm_scope).token
    url = (
        f"{sandbox.arm_endpoint}/subscriptions/{sandbox.subscription_id}/providers/"
        "Microsoft.Network/locations/eastus/operations/00000000-0000-0000-0000-000000000000"
        "?api-version=2024-05-01"
    )
    answer = requests.get(
        url, headers={"Authorization": f"Bearer {token}"}, verify=sandbox.ca_bundle, timeout=10
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NotFound"
