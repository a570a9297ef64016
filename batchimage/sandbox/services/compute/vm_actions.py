"""VM operations beyond create/delete: GET with `$expand=instanceView`, the instance
view, start / powerOff / restart / deallocate (LROs moving the power state), and
generalize (synchronous; only a stopped or deallocated VM)."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import arm, lro
from batchimage.sandbox.clock import action
from batchimage.sandbox.context import Call, Reply, World
from batchimage.sandbox.services.compute import errors, quota, vms

# operation -> (duration key, power while running, power after, allowed power states)
POWER_OPS: dict[str, tuple[str, str, str]] = {
    "start": ("vm.start", "starting", "running"),
    "powerOff": ("vm.power_off", "stopping", "stopped"),
    "restart": ("vm.restart", "starting", "running"),
    "deallocate": ("vm.deallocate", "deallocating", "deallocated"),
}


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


def _check(call: Call, record: dict[str, Any], operation: str) -> None:
    power = record.get("_power")
    name = record["name"]
    if operation == "start":
        if record.get("_generalized"):
            raise errors.vm_generalized("Start VM", name)
        if not quota.allocated(record):
            size = record["properties"]["hardwareProfile"]["vmSize"]
            quota.check(
                call.world, call.params["subscription"], record["location"], size, skip=record["id"]
            )
    elif operation == "powerOff":
        if record.get("_generalized"):
            raise errors.vm_generalized("powerOff", name)
        if power == "deallocated":
            raise errors.not_allowed(
                f"Operation 'powerOff' is not allowed on VM '{name}' since the VM is either "
                "deallocated or marked to be deallocated."
            )
    elif operation == "restart" and (power != "running" or record.get("_generalized")):
        raise errors.vm_not_running()


def power_action(operation: str) -> Any:
    """The handler of POST .../virtualMachines/{name}/<operation>."""
    duration_key, during, after = POWER_OPS[operation]

    def handler(call: Call) -> Reply:
        record = find(call)
        _ready(call, record)
        _check(call, record, operation)
        already = record.get("_power") == after and operation != "restart"
        if not already:
            record["_power"] = during
        op = lro.start(
            call,
            namespace=vms.NS,
            duration=0.0 if already else call.world.config.duration(duration_key, 30.0),
            done="compute.vm_power",
            failed="compute.vm_power_failed",
            args={"id": record["id"], "power": after, "before": record.get("_power")},
            location=record["location"],
        )
        record["_op"] = op["id"]
        call.store.touch()
        return lro.accepted(call.world, op, async_op=True)

    return handler


@action("compute.vm_power")
def _power_done(world: World, args: dict[str, Any]) -> None:
    record = vms.find_vm(world, args["id"])
    if record is None:
        return
    record.pop("_op", None)
    record["_power"] = args["power"]
    world.store.touch()


@action("compute.vm_power_failed")
def _power_failed(world: World, args: dict[str, Any]) -> None:
    record = vms.find_vm(world, args["id"])
    if record is None:
        return
    record.pop("_op", None)
    record["_power"] = args.get("before") or "running"
    world.store.touch()


def generalize(call: Call) -> Reply:
    """Mark a stopped or deallocated VM generalized (irreversible, as on Azure)."""
    record = find(call)
    _ready(call, record)
    if record.get("_power") not in ("stopped", "deallocated"):
        raise errors.not_allowed(
            f"Operation 'generalize' is not allowed on VM '{record['name']}' since the VM is "
            "running. Please stop or deallocate the VM first."
        )
    record["_generalized"] = True
    call.store.touch()
    return Reply(200, None)
