"""ARM's request limits in the sandbox (`batchimage.sandbox.ratelimit`): every ARM answer
says what is left of the principal's and the subscription's buckets, and an empty bucket
is answered 429 TooManyRequests with Retry-After, the request not processed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.ratelimit import Limits

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
