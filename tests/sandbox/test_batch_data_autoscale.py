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
from batchimage.sandbox.services.batch_data.models.formula import (
    FormulaError,
    Samples,
    compile_formula,
)
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
    mixed = (
        "$TargetDedicatedNodes = "
        "(TimeInterval_Minute * 2 > TimeInterval_Second * 100) * 3 + (2 == 2);"
    )
    assert _results(mixed).startswith("$TargetDedicatedNodes=4;")


@pytest.mark.parametrize(
    ("formula", "kind", "line", "column", "words"),
    [
        ("$TargetDedicatedNodes = ;", "syntax", 1, 25, "Unexpected ';'"),
        (
            "$x = 1;\n$TargetDedicatedNodes = $PendingTasks.GetMedian(1);",
            "syntax",
            2,
            39,
            "'GetMedian' is not a method of a sample data set",
        ),
        ("$TargetDedicatedNodes = median(1, 2);", "syntax", 1, 25, "median"),
        ("$TargetDedicatedNodes = $PendingTasks + 1;", "syntax", 1, 25, "sample data set"),
        ("$t = 2;\n$x = $t.hour;", "evaluation", 2, 9, "double, it has no member 'hour'"),
        ("$TargetDedicatedNodes = TimeInterval_Minute + 1;", "evaluation", 1, 45, "timeinterval"),
        (
            "$TargetDedicatedNodes = val($CPUPercent.GetSample(2), 5);",
            "evaluation",
            1,
            25,
            "outside",
        ),
        ("$TargetDedicatedNodes = avg($CPUPercent.GetSample(0));", "evaluation", 1, 25, "empty"),
        (
            "$x = $ActiveTasks.GetSamplePercent(10);",
            "evaluation",
            1,
            19,
            "Expected one or two look-back times",
        ),
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


# The documented "pending tasks" example (Create a formula to automatically scale compute
# nodes in a Batch pool).
PENDING_FORMULA = """startingNumberOfVMs = 1;
maxNumberofVMs = 25;
pendingTaskSamplePercent = $PendingTasks.GetSamplePercent(180 * TimeInterval_Second);
pendingTaskSamples = pendingTaskSamplePercent < 70 ? startingNumberOfVMs : \
avg($PendingTasks.GetSample(180 * TimeInterval_Second));
$TargetDedicatedNodes=min(maxNumberofVMs, pendingTaskSamples);
$NodeDeallocationOption = taskcompletion;"""


def _history(count: int) -> Samples:
    """`count` samples; $PendingTasks is the sample's age in minutes, others 1."""
    return Samples(
        now=1_700_000_000.0,
        count=count,
        value=lambda name, age: age / 60 if name == "$PendingTasks" else 1.0,
    )


def test_formula_reads_samples() -> None:
    young = compile_formula(PENDING_FORMULA)(SYSTEM, _history(2)).values
    assert young["pendingTaskSamplePercent"] == pytest.approx(100 * 2 / 6)
    assert young["$TargetDedicatedNodes"] == 1.0  # too few samples: startingNumberOfVMs
    old = compile_formula(PENDING_FORMULA)(SYSTEM, _history(100)).values
    assert old["pendingTaskSamplePercent"] == 100.0
    assert old["$TargetDedicatedNodes"] == pytest.approx(sum(range(6)) / 2 / 6)  # ages 0..150 s
    formula = """
        last = $PendingTasks.GetSample(3);
        span = $PendingTasks.GetSample(1 * TimeInterval_Minute, 3 * TimeInterval_Minute);
        share = $PendingTasks.GetSamplePercent(TimeInterval_Minute * 10);
        n = $CPUPercent.Count(); p = $CPUPercent.GetSamplePeriod();
        begin = $CPUPercent.HistoryBeginTime();
        since = time() - begin;
        $TargetDedicatedNodes = len(last, span) + val(span, 0);
    """
    values = compile_formula(formula)(SYSTEM, _history(8)).values
    assert values["last"] == (1.0, 0.5, 0.0)  # oldest first
    assert values["span"] == (2.5, 2.0, 1.5, 1.0)
    assert values["share"] == 40.0 and values["n"] == 8.0
    result = compile_formula(formula)(SYSTEM, _history(8)).results
    assert "p=00:00:30;" in result and "since=00:03:30;" in result
    assert "begin=2023-11-14T22:09:50.000Z" in result
    assert values["$TargetDedicatedNodes"] == 7 + 2.5


def test_formula_insufficient_samples_name_the_position() -> None:
    formula = (
        "$x = 1;\n$TargetDedicatedNodes = avg($CPUPercent.GetSample(TimeInterval_Minute * 10, 95));"
    )
    with pytest.raises(FormulaError) as failed:
        compile_formula(formula)(SYSTEM, _history(18))
    assert failed.value.kind == "insufficient"
    assert failed.value.message == (
        "Insufficient data from data set: $CPUPercent wanted 95%, received 90%"
    )
    assert (failed.value.line, failed.value.column) == (2, 29)
    enough = formula.replace("95", "80")
    assert compile_formula(enough)(SYSTEM, _history(18)).values["$TargetDedicatedNodes"] == 1.0


def test_formula_vectors_time_and_stop() -> None:
    formula = """
        v = $ActiveTasks.GetSample(4) * 2 + $ActiveTasks.GetSample(4);
        a = avg(v, 7); l = len(v); m = max(v, 10); r = range(v, 0); s = sum(v);
        d = std(1, 2, 3, 4); n = norm(3, 4); q = percentile(v, 50); g = lg(v);
        x = rand(); ok = x >= 0 && x < 1;
        t = time("2024-03-04T09:30:00Z"); h = t.hour; w = t.weekday;
        later = t + TimeInterval_Hour * 2 > t;
        $TargetLowPriorityNodes = 2;
        stop();
        $TargetLowPriorityNodes = 9;
    """
    values = compile_formula(formula)(SYSTEM, _history(5)).values
    assert values["v"] == (3.0, 3.0, 3.0, 3.0)
    assert (values["a"], values["l"], values["m"], values["r"], values["s"]) == (
        (12 + 7) / 5, 4.0, 10.0, 3.0, 12.0,
    )  # fmt: skip
    assert values["d"] == pytest.approx(1.2909944) and values["n"] == 5.0
    assert values["q"] == 3.0 and values["g"] == pytest.approx((1.5849625,) * 4)
    assert values["ok"] == 1.0 and values["later"] == 1.0
    assert (values["h"], values["w"]) == (9.0, 1.0)  # a Monday
    assert values["$TargetLowPriorityNodes"] == 2.0  # stop() ended the evaluation


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
    # no published code for a formula failing while it runs: Batch's generic autoscale code
    assert failed.error is not None and failed.error.code == "InvalidAutoScalingSettings"
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


def _evaluate(batch: BatchClient, pool_id: str, formula: str) -> bm.AutoScaleRun:
    return batch.evaluate_pool_auto_scale(
        pool_id, bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)
    )


def _values(run: bm.AutoScaleRun) -> dict[str, str]:
    assert run.error is None, run.error
    return dict(pair.split("=", 1) for pair in run.results.split(";"))


def test_sample_formulas_through_the_sdk(
    batch: BatchClient, admin: SandboxAdmin, unique: Callable[[str], str]
) -> None:
    pool_id, job_id = unique("samples"), unique("samplejob")
    options = pool_options(
        pool_id,
        target_dedicated_nodes=None,
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = 0;",
        auto_scale_evaluation_interval=dt.timedelta(hours=1),
    )
    batch.create_pool(options)
    batch.create_job(
        bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=pool_id))
    )
    batch.create_tasks(
        job_id, [bm.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(3)]
    )
    # the newest sample is the pool's state now: three tasks wait, no node runs them
    now = _values(
        _evaluate(
            batch,
            pool_id,
            "$TargetDedicatedNodes = max(0, $PendingTasks.GetSample(1));"
            "active = $ActiveTasks.GetSample(1); running = $RunningTasks.GetSample(1);"
            "p = $PendingTasks.GetSamplePeriod(); n = $PendingTasks.Count();",
        )
    )
    assert now["$TargetDedicatedNodes"] == "3" and now["active"] == "[3]"
    assert now["running"] == "[0]" and now["p"] == "00:00:30" and int(now["n"]) >= 1
    # more history than the pool has: InsufficientSampleData, located, in autoScaleRun.error
    short = _evaluate(
        batch,
        pool_id,
        "$x = 1;\n$TargetDedicatedNodes = avg($PendingTasks.GetSample(TimeInterval_Week, 50));",
    )
    assert short.error is not None and short.error.code == "InsufficientSampleData"
    assert short.error.message == "Autoscale evaluation failed due to insufficient sample data"
    detail = {v.name: v.value for v in short.error.error_values}
    assert detail["Message"].startswith(
        "Line 2, Col 29: Insufficient data from data set: $PendingTasks wanted 50%, received "
    )

    admin.advance(600)  # ten simulated minutes of samples with the tasks waiting
    documented = _values(_evaluate(batch, pool_id, PENDING_FORMULA))
    assert documented["pendingTaskSamplePercent"] == "100"
    assert documented["$TargetDedicatedNodes"] == "3"
    window = _values(
        _evaluate(
            batch,
            pool_id,
            "v = $PendingTasks.GetSample(TimeInterval_Minute * 5, 100);"
            "$TargetDedicatedNodes = len(v);",
        )
    )
    assert (
        window["v"] == "[" + ",".join(["3"] * 10) + "]" and window["$TargetDedicatedNodes"] == "10"
    )

    # the documented formula scales the pool to the waiting tasks, then back to zero
    batch.enable_pool_auto_scale(
        pool_id,
        bm.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula=PENDING_FORMULA,
            auto_scale_evaluation_interval=dt.timedelta(minutes=5),
        ),
    )
    assert batch.get_pool(pool_id).auto_scale_run.results.startswith("$TargetDedicatedNodes=3;")
    wait_for(
        lambda: all(t.state == bm.BatchTaskState.COMPLETED for t in batch.list_tasks(job_id)),
        "tasks done",
    )
    admin.advance(600)
    after = _values(
        _evaluate(
            batch,
            pool_id,
            "done = sum($SucceededTasks.GetSample(TimeInterval_Hour * 2));"
            "waited = max($PendingTasks.GetSample(TimeInterval_Hour * 2));"
            "left = $PendingTasks.GetSample(1);"
            "nodes = max($CurrentDedicatedNodes.GetSample(TimeInterval_Hour * 2));"
            "$TargetDedicatedNodes = 0;",
        )
    )
    assert after["done"] == "3" and after["nodes"] == "3"
    assert after["waited"] == "3" and after["left"] == "[0]"
    wait_for(
        lambda: admin.advance(300) and batch.get_pool(pool_id).current_dedicated_nodes == 0,
        "the pool shrinks to zero",
    )


def test_bad_formula_at_create(batch: BatchClient, unique: Callable[[str], str]) -> None:
    pool_id = unique("badauto")
    options = pool_options(
        pool_id,
        target_dedicated_nodes=None,
        enable_auto_scale=True,
        auto_scale_formula="$TargetDedicatedNodes = $ActiveTasks.GetSampleMedian(10);",
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
