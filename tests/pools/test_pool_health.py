"""Unit tests of a pool's health against `wait_for` (real SDK models, no Azure)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import models as bm

from batchimage.azure.pool_health import assess, count_summary


def pool(allocation: str = "steady", errors: list[Any] | None = None) -> bm.BatchPool:
    data: dict[str, Any] = {"id": "p", "state": "active", "allocationState": allocation}
    if errors:
        data["resizeErrors"] = errors
    return bm.BatchPool(data)


QUOTA = [{"code": "AccountCoreQuotaReached", "message": "The account has reached core quota"}]


@pytest.mark.parametrize(
    ("live", "counts", "wait_for", "verdict"),
    [
        (pool("resizing"), {}, "none", "ready"),
        (pool("resizing"), {"creating": 2}, "steady", "settling"),
        (pool(), {"starting": 2}, "steady", "ready"),
        (pool(errors=QUOTA), {"idle": 1}, "steady", "failed"),
        (pool(), {"idle": 1, "waitingforstarttask": 1}, "idle", "settling"),
        (pool(), {"idle": 1, "starttaskfailed": 1}, "idle", "failed"),
        (pool(), {"unusable": 2}, "idle", "failed"),
        (pool(), {"idle": 1, "running": 1, "preempted": 1}, "idle", "ready"),
        (pool(), {}, "idle", "ready"),
    ],
)
def test_verdicts(live: bm.BatchPool, counts: dict[str, int], wait_for: Any, verdict: str) -> None:
    assert assess(live, counts, wait_for).verdict == verdict


def test_summary_names_counts_and_resize_errors() -> None:
    assert count_summary({"idle": 1, "starting": 3}) == "3 starting, 1 idle"
    assert count_summary({}) == "no nodes"
    health = assess(pool(errors=QUOTA), {"idle": 1}, "idle")
    assert health.summary == "steady: 1 idle; resize errors: AccountCoreQuotaReached"
