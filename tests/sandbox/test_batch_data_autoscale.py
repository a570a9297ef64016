"""Pool autoscale: the formula evaluator (unit), and enable / evaluate / disable and
periodic evaluation through the real BatchClient, with Batch's error codes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.services.batch_data.formula import FormulaError, compile_formula
from tests.sandbox import batch_support
from tests.sandbox.batch_support import pool_options, wait_for, wait_steady

batch = batch_support.batch  # fixture

SYSTEM: dict[str, float | str] = {
    "$CurrentDedicatedNodes": 2.0,
    "$CurrentLowPriorityNodes": 0.0,
    "$TargetDedicatedNodes": 2.0,
    "$TargetLowPriorityNodes": 0.0,
    "$NodeDeallocationOption": "requeue",
}


def _results(formula: str) -> str:
    return compile_formula(formula)(SYSTEM).results


def test_formula_common_forms() -> None:
    assert _results("$TargetDedicatedNodes = 4;") == (
        "$TargetDedicatedNodes=4;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )
    formula = """
        // grow by one, at most five
        $cap = 5;
        $TargetDedicatedNodes = min($CurrentDedicatedNodes + 1, $cap);
        $TargetLowPriorityNodes = max(0, $cap - $TargetDedicatedNodes * 2) / 2;
        $NodeDeallocationOption = taskcompletion;
        spare = $CurrentDedicatedNodes > 1 ? 1 : 0
    """
    assert _results(formula) == (
        "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;"
        "$NodeDeallocationOption=taskcompletion;$cap=5;spare=1"
    )
    assert _results("$TargetDedicatedNodes = TimeInterval_Minute / 20 + (2 == 2);").startswith(
        "$TargetDedicatedNodes=4;"
    )


@pytest.mark.parametrize(
    ("formula", "kind", "line", "column", "words"),
    [
        ("$TargetDedicatedNodes = ;", "syntax", 1, 25, "Unexpected ';'"),
        (
            "$x = 1;\n$TargetDedicatedNodes = $PendingTasks.GetSample(1);",
            "syntax",
            2,
            38,
            "$PendingTasks.GetSample",
        ),
        ("$TargetDedicatedNodes = percentile(1, 2);", "syntax", 1, 25, "percentile"),
        ("$CurrentDedicatedNodes = 1;", "syntax", 1, 1, "read-only"),
        ("$TargetDedicatedNodes = $nope + 1;", "evaluation", 1, 25, "'$nope' is not defined"),
        ("$TargetDedicatedNodes = 1 / 0;", "evaluation", 1, 27, "Division by zero"),
    ],
)
def test_formula_errors_name_the_position(
    formula: str, kind: str, line: int, column: int, words: str
) -> None:
    with pytest.raises(FormulaError) as failed:
        compile_formula(formula)(SYSTEM)
    assert failed.value.kind == kind and words in str(failed.value)
    assert (failed.value.line, failed.value.column) == (line, column)


def _grow_formula() -> str:
    return "$TargetDedicatedNodes = min($CurrentDedicatedNodes + 1, 3);"


def test_autoscale_through_the_sdk(
    batch: BatchClient, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    pool_id = unique("auto")
    options = pool_options(
        pool_id,
        target_dedicated_nodes=None,
        enable_auto_scale=True,
        auto_scale_formula=_grow_formula(),
        auto_scale_evaluation_interval=dt.timedelta(hours=1),
    )
    batch.create_pool(options)
    pool = wait_steady(batch, pool_id)
    assert pool.enable_auto_scale is True and pool.target_dedicated_nodes == 1
    assert pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=1;")
    assert pool.auto_scale_evaluation_interval == dt.timedelta(hours=1)
    with pytest.raises(ResourceExistsError) as manual:
        batch.begin_resize_pool(pool_id, bm.BatchPoolResizeOptions(target_dedicated_nodes=5))
    assert manual.value.error is not None
    assert manual.value.error.code == "OperationInvalidForCurrentState"

    for expected in (2, 3, 3):  # each interval the formula runs again
        admin.advance(3600)
        wait_for(
            lambda want=expected: (
                batch.get_pool(pool_id).current_dedicated_nodes == want
                and batch.get_pool(pool_id).allocation_state == "steady"
            ),
            f"{expected} nodes",
        )

    run = batch.evaluate_pool_auto_scale(
        pool_id, bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes=1;")
    )
    assert run.results.startswith("$TargetDedicatedNodes=1;") and run.error is None
    assert batch.get_pool(pool_id).target_dedicated_nodes == 3  # evaluate changes nothing
    failed = batch.evaluate_pool_auto_scale(
        pool_id,
        bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes=$x;"),
    )
    assert failed.error is not None and failed.error.code == "AutoScaleFormulaEvaluationError"
    with pytest.raises(HttpResponseError) as syntax:
        batch.evaluate_pool_auto_scale(
            pool_id,
            bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes=(;"),
        )
    assert syntax.value.status_code == 400 and syntax.value.error is not None
    assert syntax.value.error.code == "AutoScalingFormulaSyntaxError"
    details = {d.code: d.message for d in syntax.value.error.details}
    assert (details["Line"], details["Column"]) == ("1", "24")

    batch.enable_pool_auto_scale(
        pool_id,
        bm.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = max(1, 0);"),
    )
    wait_for(lambda: batch.get_pool(pool_id).current_dedicated_nodes == 1, "shrink to 1")
    batch.disable_pool_auto_scale(pool_id)
    pool = batch.get_pool(pool_id)
    assert pool.enable_auto_scale is False and pool.auto_scale_formula is None
    wait_steady(batch, pool_id)
    batch.begin_resize_pool(
        pool_id, bm.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=0
    ).result()
    assert batch.get_pool(pool_id).current_dedicated_nodes == 2
    with pytest.raises(ResourceExistsError) as off:
        batch.evaluate_pool_auto_scale(
            pool_id,
            bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes=1;"),
        )
    assert off.value.error is not None
    assert off.value.error.code == "OperationInvalidForCurrentState"


def test_bad_formula_at_create(batch: BatchClient, unique: Callable[[str], str]) -> None:
    pool_id = unique("badauto")
    options = pool_options(
        pool_id,
        target_dedicated_nodes=None,
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = $ActiveTasks.GetSamplePercent(10);",
    )
    with pytest.raises(HttpResponseError) as bad:
        batch.create_pool(options)
    assert bad.value.error is not None
    assert bad.value.error.code == "AutoScalingFormulaSyntaxError"
    too_often = pool_options(
        pool_id,
        target_dedicated_nodes=None,
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = 1;",
        auto_scale_evaluation_interval=dt.timedelta(minutes=1),
    )
    with pytest.raises(HttpResponseError) as interval:
        batch.create_pool(too_often)
    assert interval.value.error is not None
    assert interval.value.error.code == "InvalidPropertyValue"
