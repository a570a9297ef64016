"""batchimage.azure.network's NSG and VNet writes, through the real NetworkManagementClient:
the write is done once the resource reads Succeeded, not at its operation's next poll
(Azure asks 10 s between those for work of a few seconds); a failed operation still
leaves with its error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.azure.network import write_nsg
from batchimage.core.errors import AzureError
from batchimage.core.waiter import Waiter
from batchimage.core.waiting import Clock
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.ui import CollectSink


@dataclass(kw_only=True)
class Edge(Waiter):
    """The edge's view of a run: a waiter and the client bundle."""

    bundle: AzureClients

    @property
    def clients(self) -> AzureClients:
        return self.bundle


@pytest.fixture
def edge(clients: AzureClients) -> Edge:
    return Edge(events=CollectSink(), clock=Clock(), bundle=clients)


@pytest.fixture
def group(clients: AzureClients, unique: Callable[[str], str]) -> str:
    name = unique("rgwatch")
    clients.resource.resource_groups.create_or_update(name, {"location": "eastus"})
    return name


@pytest.fixture
def slow(admin: SandboxAdmin) -> Iterator[None]:
    """For this test a Network create takes 500 simulated seconds (0.1 s), and the poll
    after azure-core's first comes 5,000 simulated seconds (1 s) later."""
    config = admin.clock()["config"]
    saved = config["retry_after"]["network.create"], config["durations"]["network.create"]
    admin.configure(retry_after={"network.create": [3, 5_000]}, durations={"network.create": 500.0})
    yield
    admin.configure(
        retry_after={"network.create": saved[0]}, durations={"network.create": saved[1]}
    )


def _status_polls(admin: SandboxAdmin, seq: int) -> list[dict[str, Any]]:
    return [r for r in admin.requests(since=seq) if "/operations/" in str(r["path"])]


def test_an_nsg_is_taken_once_it_reads_succeeded(
    edge: Edge, admin: SandboxAdmin, group: str, slow: None
) -> None:
    seq = admin.counters()["seq"]
    nsg = write_nsg(edge, group, "watched", location="eastus", tags={})
    assert nsg.provisioning_state == "Succeeded"
    assert len(_status_polls(admin, seq)) == 1  # azure-core's first poll, not its next
    reads = [
        r
        for r in admin.requests(since=seq)
        if r["method"] == "GET" and str(r["path"]).endswith("/networkSecurityGroups/watched")
    ]
    assert reads  # it was seen done by reading it


def test_a_failed_nsg_leaves_with_its_operations_error(
    edge: Edge, admin: SandboxAdmin, group: str
) -> None:
    admin.set_faults(
        [{"kind": "lro_fail", "method": "PUT", "path": "/networkSecurityGroups/failing$"}]
    )
    with pytest.raises(AzureError) as failed:
        write_nsg(edge, group, "failing", location="eastus", tags={})
    assert failed.value.code == "InternalOperationError"
    assert "create NSG failing" in str(failed.value)
