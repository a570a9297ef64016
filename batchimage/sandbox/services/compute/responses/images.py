"""The image and disk export actions: VM `capture` (into the `system` container) and a
disk's grant / revoke access, each an LRO answered 202 Accepted (the transitions that end
them are in `models/images.py`)."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import arm, lro
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.compute import errors
from batchimage.sandbox.services.compute.models import images, vms


def _idle(call: Call, record: dict[str, Any]) -> dict[str, Any]:
    """`record`, unless an operation on it still runs (409 AnotherOperationInProgress)."""
    if arm.busy(call.world, record):
        raise arm.another_operation(call.world, record)
    return record


def _start(
    call: Call,
    record: dict[str, Any],
    timer: tuple[str, float],
    done: str,
    failed: str,
    args: dict[str, Any],
) -> Reply:
    """Start an operation on `record` (busy until it ends; `timer`: the configured duration
    key and its default seconds) and answer 202 Accepted with its URLs."""
    op = lro.start(
        call,
        namespace=vms.NS,
        duration=call.world.config.duration(*timer),
        kind=timer[0],
        done=done,
        failed=failed,
        args=args,
        location=record["location"],
    )
    record["_op"] = op["id"]
    call.store.touch()
    return lro.accepted(call.world, op, async_op=True)


def capture(call: Call) -> Reply:
    from batchimage.sandbox.services.compute.urls import VIRTUAL_MACHINES

    vm = _idle(call, VIRTUAL_MACHINES.find(call))
    body = call.json_object()
    for key in ("vhdPrefix", "destinationContainerName"):
        if not body.get(key):
            raise errors.missing(key)
    images.check_capture(call.world, vm)
    args = {
        "vm": vm["id"],
        "prefix": str(body["vhdPrefix"]),
        "container": str(body["destinationContainerName"]),
    }
    return _start(
        call, vm, ("vm.capture", 60.0), "compute.captured", "compute.capture_failed", args
    )


def _disk(call: Call) -> dict[str, Any]:
    from batchimage.sandbox.services.compute.urls import DISKS

    return DISKS.find(call)


def grant_access(call: Call) -> Reply:
    record = _idle(call, _disk(call))
    body = call.json_object()
    access = str(body.get("access") or "")
    if access.lower() != "read":
        raise errors.invalid_parameter(
            f"The access level '{access}' is not modelled by the batchimage sandbox (only Read).",
            "access",
        )
    seconds = int(body.get("durationInSeconds") or 0)
    if seconds <= 0:
        raise errors.missing("durationInSeconds")
    images.check_grant(call.world, record)
    return _start(
        call,
        record,
        ("disk.grant_access", 10.0),
        "compute.access_granted",
        "compute.access_failed",
        {"id": record["id"], "seconds": seconds},
    )


def revoke_access(call: Call) -> Reply:
    record = _idle(call, _disk(call))
    return _start(
        call,
        record,
        ("disk.revoke_access", 5.0),
        "compute.access_revoked",
        "compute.access_failed",
        {"id": record["id"]},
    )
