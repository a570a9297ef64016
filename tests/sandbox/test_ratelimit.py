"""ARM's request limits in the sandbox (`batchimage.sandbox.ratelimit`): every ARM answer
says what is left of the principal's and the subscription's buckets, and an empty bucket
is answered 429 TooManyRequests with Retry-After, the request not processed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.sandbox import adminapi
from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.clock import Clock
from batchimage.sandbox.config import SandboxConfig
from batchimage.sandbox.context import Call, Identity, World
from batchimage.sandbox.ratelimit import Limits
from batchimage.sandbox.requestlog import RequestLog
from batchimage.sandbox.store import Store

SUB = "/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups"


def test_answers_carry_the_remaining_counts(clients: AzureClients) -> None:
    seen: list[dict[str, str]] = []

    def keep(response: Any) -> None:
        seen.append({k.lower(): v for k, v in response.http_response.headers.items()})

    list(clients.resource.resource_groups.list(raw_response_hook=keep))
    read = seen[-1]
    assert int(read["x-ms-ratelimit-remaining-subscription-reads"]) < 250
    assert int(read["x-ms-ratelimit-remaining-subscription-global-reads"]) < 3750
    assert "x-ms-ratelimit-remaining-subscription-writes" not in read


def call(method: str, oid: str = "ana") -> Any:
    return SimpleNamespace(method=method, path=SUB, claims={"oid": oid})


def test_an_empty_bucket_answers_429_with_retry_after() -> None:
    world: Any = SimpleNamespace(clock=SimpleNamespace(scale=1.0))  # Azure's own pace
    limits = Limits(now=lambda: 100.0)  # no refill between requests, however slow the machine
    first = limits.take(world, call("PUT"))
    assert first == {
        "x-ms-ratelimit-remaining-subscription-writes": "199",
        "x-ms-ratelimit-remaining-subscription-global-writes": "2999",
    }
    for _ in range(199):
        limits.take(world, call("PUT"))
    with pytest.raises(ApiError) as refused:
        limits.take(world, call("PUT"))
    assert refused.value.status == 429 and refused.value.code == "TooManyRequests"
    assert "Write_Subscription" in refused.value.message
    assert int(refused.value.headers["Retry-After"]) >= 1
    # reads, and another principal's writes, come from other buckets
    assert limits.take(world, call("GET"))["x-ms-ratelimit-remaining-subscription-reads"] == "249"
    other = limits.take(world, call("PUT", oid="bob"))
    assert other["x-ms-ratelimit-remaining-subscription-writes"] == "199"
    assert other["x-ms-ratelimit-remaining-subscription-global-writes"] == "2799"


def test_a_reset_fills_the_buckets_again(tmp_path: Path) -> None:
    """`sandbox reset` (the admin endpoint) starts a fresh world with fresh request limits."""
    identity = Identity("t", SUB.split("/")[2], "c", "s", "k")
    world = World(Store(tmp_path / "state.json"), Clock(1.0), SandboxConfig(), identity)
    world.log = RequestLog()
    world.limits = Limits(now=lambda: 100.0)  # no refill by the clock
    for _ in range(200):
        world.limits.take(world, call("PUT"))
    with pytest.raises(ApiError):
        world.limits.take(world, call("PUT"))
    reset = Call(world, None, "POST", "/_sandbox/reset", {}, {}, {})  # type: ignore[arg-type]
    assert adminapi.reset(reset).status == 204
    again = world.limits.take(world, call("PUT"))
    assert again["x-ms-ratelimit-remaining-subscription-writes"] == "199"
