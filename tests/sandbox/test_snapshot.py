"""The read snapshot `plan` uses (`batchimage.azure.snapshot`), through the real SDK clients
against the sandbox: a whole GET or HEAD answered 200 or 404 is sent once; a failed read and
a write go to Azure every time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.snapshot import Snapshot
from batchimage.sandbox.admin import SandboxAdmin


def sent(admin: SandboxAdmin, since: int) -> Counter[tuple[str, str]]:
    """Requests the sandbox answered since `since`, by (method, path)."""
    return Counter((e["method"], e["path"]) for e in admin.requests(since=since))


def test_a_read_is_sent_once_and_a_write_or_failure_every_time(
    cloud: CloudProfile, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    reads = Snapshot()
    clients = AzureClients(cloud, snapshot=reads, retry_total=0)
    group = unique("rgsnap")
    path = f"/subscriptions/{clients.subscription_id}/resourcegroups/{group}"
    start = admin.counters()["seq"]

    for _ in range(3):  # absent: a 404, kept too
        assert not clients.resource.resource_groups.check_existence(group)
    with pytest.raises(ResourceNotFoundError):
        clients.resource.resource_groups.get(group)
    clients.resource.resource_groups.create_or_update(group, {"location": "eastus"})
    clients.resource.resource_groups.create_or_update(group, {"location": "eastus"})
    counted = sent(admin, start)
    assert counted[("PUT", path)] == 2  # writes always go
    assert counted[("HEAD", path)] == 1, counted  # the first 404 answered the other two
    assert counted[("GET", path)] == 1, counted
    assert reads.answered == 2

    # A 503 is not kept: the next read asks again (and keeps the 200 it gets then).
    other = unique("rgsnap")
    clients.resource.resource_groups.create_or_update(other, {"location": "eastus"})
    admin.set_faults([{"kind": "status", "path": f"/resourcegroups/{other}$", "status": 503}])
    start = admin.counters()["seq"]
    with pytest.raises(HttpResponseError) as failed:
        clients.resource.resource_groups.get(other)
    assert failed.value.status_code == 503
    admin.clear_faults()
    assert clients.resource.resource_groups.get(other).name == other
    assert clients.resource.resource_groups.get(other).name == other
    assert sent(admin, start)[("GET", f"{path.rsplit('/', 1)[0]}/{other}")] == 2


def test_a_parsed_read_is_shared_and_a_failed_one_is_not_kept() -> None:
    """`Snapshot.remember`: what the preflight's facts parse from a read (a Batch account's
    pools, the Marketplace versions) is worked out once for every spec of the command."""
    reads = Snapshot()
    calls: list[str] = []

    def pools() -> list[str]:
        calls.append("pools")
        return ["pool-a", "pool-b"]

    def refused() -> list[str]:
        calls.append("refused")
        raise ConnectionError("reset")

    assert reads.remember("pools:acct", pools) == ["pool-a", "pool-b"]
    assert reads.remember("pools:acct", pools) == ["pool-a", "pool-b"]
    for _ in range(2):
        with pytest.raises(ConnectionError):
            reads.remember("pools:other", refused)
    assert calls == ["pools", "refused", "refused"]  # once; a failure asked again
