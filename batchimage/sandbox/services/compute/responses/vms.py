"""VM operations beyond create/delete: GET with `$expand=instanceView`, the instance
view, start / powerOff / restart / deallocate (LROs moving the power state), and
generalize (synchronous; only a stopped or deallocated VM)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchimage.sandbox import arm, lro
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.compute.models import power, vms


def find(call: Call) -> dict[str, Any]:
    from batchimage.sandbox.services.compute.urls import VIRTUAL_MACHINES

    return VIRTUAL_MACHINES.find(call)


def get_vm(call: Call) -> Reply:
    record = find(call)
    out = arm.render(call.world, record)
    expand = (call.arg("$expand") or "").lower()
    if "instanceview" in expand:
        out["properties"]["instanceView"] = vms.instance_view(call.world, record)
    if "userdata" in expand and "_user_data" in record:
        out["properties"]["userData"] = record["_user_data"]
    return Reply(200, out)


def get_instance_view(call: Call) -> Reply:
    return Reply(200, vms.instance_view(call.world, find(call)))


def _ready(call: Call, record: dict[str, Any]) -> None:
    if arm.busy(call.world, record):
        raise arm.another_operation(call.world, record)


def power_action(operation: str) -> Callable[[Call], Reply]:
    """The handler of POST .../virtualMachines/{name}/<operation>."""
    duration_key = power.POWER_OPS[operation][0]

    def handler(call: Call) -> Reply:
        record = find(call)
        _ready(call, record)
        power.check(call.world, call.params["subscription"], record, operation)
        already, args = power.begin(record, operation)
        op = lro.start(
            call,
            namespace=vms.NS,
            duration=0.0 if already else call.world.config.duration(duration_key, 30.0),
            kind=duration_key,
            done=power.DONE,
            failed=power.FAILED,
            args=args,
            location=record["location"],
        )
        record["_op"] = op["id"]
        call.store.touch()
        return lro.accepted(call.world, op, async_op=True)

    return handler


def generalize(call: Call) -> Reply:
    """Mark a stopped or deallocated VM generalized (irreversible, as on Azure)."""
    record = find(call)
    _ready(call, record)
    power.generalize(call.world, record)
    return Reply(200, None)
