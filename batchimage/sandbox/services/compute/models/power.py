"""A VM's power transitions: which of start / powerOff / restart / deallocate and
generalize its state allows (Azure's errors otherwise), and the timers that settle them."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.clock import action
from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute import errors
from batchimage.sandbox.services.compute.models import quota, vms

# operation -> (duration key, power while running, power after)
POWER_OPS: dict[str, tuple[str, str, str]] = {
    "start": ("vm.start", "starting", "running"),
    "powerOff": ("vm.power_off", "stopping", "stopped"),
    "restart": ("vm.restart", "starting", "running"),
    "deallocate": ("vm.deallocate", "deallocating", "deallocated"),
}
DONE = "compute.vm_power"
FAILED = "compute.vm_power_failed"


def check(world: World, subscription: str, record: dict[str, Any], operation: str) -> None:
    """Raise Azure's error when `operation` is not allowed on the VM now."""
    power = record.get("_power")
    name = record["name"]
    if operation == "start":
        if record.get("_generalized"):
            raise errors.vm_generalized("Start VM", name)
        if not quota.allocated(record):
            size = record["properties"]["hardwareProfile"]["vmSize"]
            quota.check(world, subscription, record["location"], size, skip=record["id"])
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


def begin(record: dict[str, Any], operation: str) -> tuple[bool, dict[str, Any]]:
    """Move the VM into `operation`'s running state: (already there, the timer's args)."""
    _, during, after = POWER_OPS[operation]
    already = record.get("_power") == after and operation != "restart"
    if not already:
        record["_power"] = during
    return already, {"id": record["id"], "power": after, "before": record.get("_power")}


@action(DONE)
def _power_done(world: World, args: dict[str, Any]) -> None:
    record = vms.find_vm(world, args["id"])
    if record is None:
        return
    record.pop("_op", None)
    record["_power"] = args["power"]
    world.store.touch()


@action(FAILED)
def _power_failed(world: World, args: dict[str, Any]) -> None:
    record = vms.find_vm(world, args["id"])
    if record is None:
        return
    record.pop("_op", None)
    record["_power"] = args.get("before") or "running"
    world.store.touch()


def generalize(world: World, record: dict[str, Any]) -> None:
    """Mark a stopped or deallocated VM generalized (irreversible, as on Azure)."""
    if record.get("_power") not in ("stopped", "deallocated"):
        raise errors.not_allowed(
            f"Operation 'generalize' is not allowed on VM '{record['name']}' since the VM is "
            "running. Please stop or deallocate the VM first."
        )
    record["_generalized"] = True
    world.store.touch()
