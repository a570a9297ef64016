"""An autoscale formula Batch takes but cannot run on the pool: apply stops at the pool step
with Batch's own error code and says to fix the formula. Batch publishes no specific code
for this case (docs/azure-behaviours.md, Error codes), so the tool names none of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from batchimage.core.errors import StepFailedError
from tests.pools.harness import PoolHarness
from tests.pools.test_pool_lifecycle import SHARED, first_pool


def autoscale(formula: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        pool = data["pools"][0]
        pool.pop("dedicated_nodes", None)
        pool["autoscale"] = {"formula": formula, "interval_min": 5}
        pool["wait_for"] = "steady"

    return edit


def test_a_formula_failing_on_the_pool_stops_with_batchs_code(pools: PoolHarness) -> None:
    spec = pools.spec("quickstart.yaml", autoscale("$TargetDedicatedNodes = 1;"), name=SHARED)
    pool_id = first_pool(pools, spec)
    pools.apply(spec)
    pools.edit(spec, autoscale("$TargetDedicatedNodes = $neverSet;"))
    with pytest.raises(StepFailedError) as failed:
        pools.apply(spec)
    assert failed.value.step == f"pool.{pool_id}"
    cause = str(failed.value.cause)
    # the code is what Batch (the sandbox) said, first, as an Azure error code is shown
    assert cause.startswith("InvalidAutoScalingSettings: the autoscale formula of pool ")
    assert "The variable '$neverSet' is not defined" in cause
    assert "fix pools[].autoscale.formula" in cause
    assert pools.batch.get_pool(pool_id).auto_scale_formula == "$TargetDedicatedNodes = 1;"
