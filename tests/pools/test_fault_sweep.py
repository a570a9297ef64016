"""A transient fault at any request of a run never fails the apply (issue 13). The
quickstart (image and pool, in-process, real SDK clients) is applied once without faults
to count the ARM and Batch requests a run sends; then, for a position n, applied again
with a fault at the n-th request: a 503 or a 429 with Retry-After on it and the SDK's
three retries after it (so the error reaches batchimage), or its connection dropped; or
the n-th operation a run starts ends Failed. Each run must end well, with nothing of the
build left and the pool there.

The suite sweeps one seeded position per fault; `bench/fault_sweep.py` sweeps every
position of a run (BATCHIMAGE_FAULT_POSITIONS=all, a report in BATCHIMAGE_FAULT_REPORT).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from batchimage.core.errors import BatchImageError
from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

SDK_TRIES = 4  # retry_total=3 (batchimage.azure.errors.SDK_RETRY)
FAULTS: dict[str, dict[str, Any]] = {
    "503": {"kind": "status", "status": 503, "times": SDK_TRIES},
    "429": {"kind": "status", "status": 429, "retry_after": 1, "times": SDK_TRIES},
    "dropped": {"kind": "drop", "times": 1},
    "failed operation": {"kind": "lro_fail", "times": 1},
}
POSITIONS = os.environ.get("BATCHIMAGE_FAULT_POSITIONS", "seed:13")
REPORT = os.environ.get("BATCHIMAGE_FAULT_REPORT")


def positions(fault: str, requests: int, operations: int) -> list[int]:
    """The n to sweep: every one (`all`) or one drawn from a seed (`seed:N`), then within
    the first 80 % of the requests (runs differ by some polls, so a later n may not come)."""
    last = operations if fault == "failed operation" else requests
    if POSITIONS == "all":
        return list(range(1, last + 1))
    rng = random.Random(f"{POSITIONS}:{fault}")
    return [rng.randint(1, max(1, last * 4 // 5))]


def report(row: dict[str, Any]) -> None:
    if REPORT:
        with Path(REPORT).open("a") as out:
            out.write(json.dumps(row) + "\n")


def clean_run(pools: PoolHarness) -> tuple[int, int]:
    """(requests sent, operations started) by one apply without faults, then destroyed."""
    spec = pools.spec("quickstart.yaml")
    pools.admin.reset_counters()
    before = len(pools.tables().get("operations", {}))
    pools.apply(spec)
    counters = pools.admin.counters()
    operations = len(pools.tables().get("operations", {})) - before
    pools.destroy(spec)
    return int(counters["reads"]) + int(counters["writes"]), operations


@pytest.mark.parametrize("fault", FAULTS)
def test_a_transient_fault_at_any_request_never_fails_the_apply(
    pools: PoolHarness, fault: str
) -> None:
    requests, operations = clean_run(pools)
    failed: list[str] = []
    for nth in positions(fault, requests, operations):
        spec = pools.spec("quickstart.yaml")
        loaded = load_spec(spec)
        pools.admin.set_faults([{**FAULTS[fault], "nth": nth}])
        started = time.monotonic()
        error = ""
        try:
            pools.apply(spec)
        except BatchImageError as exc:
            error = str(exc)
        fired = pools.admin.faults()["rules"][0]["fired"]
        pools.admin.clear_faults()
        left = pools.build_resources("sandbox-rg", loaded.name)
        pool = pools.state(spec).steps.get(f"pool.{loaded.pools[0].id}")
        pool_done = pool is not None and pool.status == "done"
        ok = not error and not left and pool_done
        report(
            {
                "fault": fault,
                "nth": nth,
                "requests": requests,
                "operations": operations,
                "fired": fired,
                "ok": ok,
                "error": error[:300],
                "left": left,
                "seconds": round(time.monotonic() - started, 2),
            }
        )
        if not ok:
            failed.append(f"{fault} at request {nth}: {error or left or 'pool not done'}")
        elif not fired and POSITIONS != "all":  # a sweep counts the positions not reached
            failed.append(f"{fault} at request {nth}: the run ended before it")
        pools.destroy(spec)
    assert failed == []
