"""Pool autoscale: enable (formula + interval, evaluated at once and then every interval),
disable, evaluate. A formula the sandbox cannot compile answers 400
AutoScalingFormulaSyntaxError with its line and column; one that fails while running
(undefined variable, division by zero) is reported in `autoScaleRun.error`, as
InsufficientSampleData when GetSample's sample percentage is not met. Sample data sets
read the pool's history (samples.py).
"""

from __future__ import annotations

import math
from typing import Any

from batchimage.sandbox.context import Call, World
from batchimage.sandbox.services.batch_data.errors import batch_error, invalid_property
from batchimage.sandbox.services.batch_data.models import allocation, pools, samples, timers
from batchimage.sandbox.services.batch_data.models.formula import (
    FormulaError,
    Result,
    compile_formula,
)
from batchimage.sandbox.services.batch_data.wire import duration, iso_duration, seconds_of, stamp

MIN_INTERVAL, MAX_INTERVAL = 300.0, 168 * 3600.0
# Batch publishes no code for a formula failing while it runs (only InsufficientSampleData):
# the sandbox answers Batch's generic code for autoscale settings it cannot use.
EVALUATION_ERROR = "InvalidAutoScalingSettings"
INSUFFICIENT = "InsufficientSampleData"


def check_formula(call: Call, formula: Any) -> str:
    """The formula, if the sandbox can compile it; else 400 as Batch answers."""
    if not isinstance(formula, str) or not formula.strip():
        raise invalid_property(call, "autoScaleFormula", formula, "The formula is empty.")
    try:
        compile_formula(formula)
    except FormulaError as exc:
        if exc.kind == "too_long":
            raise batch_error(
                call,
                400,
                "AutoScaleFormulaTooLong",
                "The specified auto-scaling formula exceeds lengths limit.",
                {"Reason": str(exc)},
            ) from exc
        raise batch_error(
            call,
            400,
            "AutoScalingFormulaSyntaxError",
            "The specified auto-scaling formula has a syntax error.",
            {"Message": str(exc), "Line": str(exc.line), "Column": str(exc.column)},
        ) from exc
    return formula


def check_interval(call: Call, value: Any) -> str:
    if value is None:
        return "PT15M"
    seconds = duration(call, "autoScaleEvaluationInterval", value)
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise invalid_property(
            call,
            "autoScaleEvaluationInterval",
            value,
            "The evaluation interval must be between 5 minutes and 168 hours.",
        )
    return iso_duration(seconds)


def evaluate(world: World, record: dict[str, Any], formula: str) -> dict[str, Any]:
    """An AutoScaleRun for `formula` against the pool now (`results` or `error`)."""
    dedicated, low = pools.counts(record)
    system: dict[str, float | str] = {
        "$CurrentDedicatedNodes": float(dedicated),
        "$CurrentLowPriorityNodes": float(low),
        "$TargetDedicatedNodes": float(record["targetDedicatedNodes"]),
        "$TargetLowPriorityNodes": float(record["targetLowPriorityNodes"]),
        "$NodeDeallocationOption": "requeue",
        "$TaskSlotsPerNode": float(record["taskSlotsPerNode"]),
    }
    run: dict[str, Any] = {"timestamp": stamp(timers.now(world))}
    try:
        result = compile_formula(formula)(system, samples.history(world, record))
        _targets(result)
    except FormulaError as exc:
        if exc.kind == "insufficient":
            run["error"] = _insufficient(exc)
            return run
        run["error"] = {
            "code": EVALUATION_ERROR,
            "message": str(exc),
            "values": [
                {"name": "Line", "value": str(exc.line)},
                {"name": "Column", "value": str(exc.column)},
            ],
        }
        return run
    run["results"] = result.results
    return run


def _insufficient(exc: FormulaError) -> dict[str, Any]:
    """The error Batch reports when GetSample's percentage is not met."""
    where = f"Line {exc.line}, Col {exc.column}: {exc.message}"
    return {
        "code": INSUFFICIENT,
        "message": "Autoscale evaluation failed due to insufficient sample data",
        "values": [{"name": "Message", "value": where}],
    }


def _targets(result: Result) -> tuple[int, int]:
    out = []
    for name in ("$TargetDedicatedNodes", "$TargetLowPriorityNodes"):
        value = result.values[name]
        if not isinstance(value, float) or math.isnan(value) or value < 0:
            raise FormulaError("evaluation", f"{name} must be a non-negative number", "", 0)
        out.append(int(value))
    return out[0], out[1]


def enable(world: World, record: dict[str, Any], formula: str, interval: str) -> None:
    """Turn autoscale on (or change it): evaluate now, resize if needed, then periodically."""
    record.update(
        {
            "enableAutoScale": True,
            "autoScaleFormula": formula,
            "autoScaleEvaluationInterval": interval,
        }
    )
    record["_autoscale"] = int(record.get("_autoscale", 0)) + 1
    pools.changed(world, record)
    apply(world, record)


def disable(world: World, record: dict[str, Any]) -> None:
    """Turn autoscale off; targets stay where the last evaluation put them."""
    for name in ("autoScaleFormula", "autoScaleEvaluationInterval", "autoScaleRun"):
        record.pop(name, None)
    record["enableAutoScale"] = False
    record["_autoscale"] = int(record.get("_autoscale", 0)) + 1
    pools.changed(world, record)


def apply(world: World, record: dict[str, Any]) -> None:
    """Evaluate the pool's formula; resize to the result when the pool is steady."""
    run = evaluate(world, record, record["autoScaleFormula"])
    record["autoScaleRun"] = run
    world.store.touch()
    if "results" in run and record["allocationState"] == "steady" and record["state"] == "active":
        values = dict(pair.split("=", 1) for pair in run["results"].split(";"))
        wanted = (int(values["$TargetDedicatedNodes"]), int(values["$TargetLowPriorityNodes"]))
        current = (record["targetDedicatedNodes"], record["targetLowPriorityNodes"])
        if wanted != current or pools.counts(record) != wanted:
            allocation.resize(world, record, *wanted)
    seconds = seconds_of(record["autoScaleEvaluationInterval"]) or 900.0
    args = {"pool": pools.key(record["_account"], record["id"]), "autoscale": record["_autoscale"]}
    timers.later(world, seconds, "batch.autoscale", args)


@timers.action("batch.autoscale")
def _periodic(world: World, args: dict[str, Any]) -> None:
    record = pools.table(world).get(args["pool"])
    if (
        record is None
        or record.get("_autoscale") != args["autoscale"]
        or not record["enableAutoScale"]
    ):
        return
    apply(world, record)
