"""The process's ARM request budget (`batchimage.azure.throttle`), on a fake clock: a 429's
Retry-After holds back every request, and low remaining counts pace requests of their kind
at the bucket's refill rate."""

from __future__ import annotations

from batchimage.azure.throttle import Budget, budget_for, remaining


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_429_with_retry_after_holds_back_every_kind() -> None:
    clock = Clock()
    budget = Budget(clock=clock)
    assert budget.delay("GET") == 0
    budget.saw("PUT", 429, {"Retry-After": "3"})
    assert budget.delay("GET") == 3 and budget.delay("DELETE") == 3
    clock.now += 2
    assert budget.delay("PUT") == 1
    budget.saw("GET", 429, {})  # no Retry-After: the SDK's backoff, nothing shared
    clock.now += 1
    assert budget.delay("GET") == 0 and budget.throttled == 2


def test_low_remaining_counts_pace_their_kind() -> None:
    clock = Clock()
    budget = Budget(clock=clock)
    budget.saw("PUT", 201, {"x-ms-ratelimit-remaining-subscription-writes": "150"})
    assert [budget.delay("PUT") for _ in range(3)] == [0, 0, 0]
    budget.saw(
        "PUT",
        201,
        {
            "x-ms-ratelimit-remaining-subscription-writes": "120",
            "x-ms-ratelimit-remaining-subscription-global-writes": "9",
        },
    )
    assert [round(budget.delay("PUT"), 2) for _ in range(3)] == [0, 0.1, 0.2]
    assert budget.delay("GET") == 0  # reads are another bucket


def test_remaining_reads_the_lowest_count() -> None:
    headers = {
        "X-Ms-Ratelimit-Remaining-Subscription-Reads": "249",
        "x-ms-ratelimit-remaining-subscription-global-reads": "3749",
    }
    assert remaining(headers, "reads") == 249 and remaining(headers, "writes") is None


def test_one_budget_per_cloud_and_subscription() -> None:
    one = budget_for("https://management.azure.com/", "SUB-1")
    assert budget_for("https://management.azure.com", "sub-1") is one
    assert budget_for("https://management.azure.com", "sub-2") is not one
