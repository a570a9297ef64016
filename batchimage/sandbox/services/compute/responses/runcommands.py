"""Run commands on the wire: the `runCommand` action (POST, an LRO whose result is the
`value[]` the guest's handler reports) and GET of a managed run command with
`$expand=instanceView` (the rules and the runs are in `models/runcommands.py`)."""

from __future__ import annotations

import copy

from batchimage.sandbox import arm, lro
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.compute.models import runcommands, runparams, vms


def run_command(call: Call) -> Reply:
    from batchimage.sandbox.services.compute.urls import VIRTUAL_MACHINES

    vm = VIRTUAL_MACHINES.find(call)
    body = call.json_object()
    command = str(body.get("commandId") or "")
    kind = runcommands.action_kind(vm, command)
    runcommands.check_running(vm)
    runcommands.check_action_free(call.world, vm)
    parameters = runparams.parse(body, "parameters", prefix="")
    lines = body.get("script") or []
    script = "\n".join(str(line) for line in lines) if lines else command
    duration, args = runcommands.plan_action(call.world, vm, kind, script, parameters)
    op = lro.start(
        call,
        namespace=vms.NS,
        duration=duration,
        kind="vm.run_command",
        done="compute.run_command_done",
        failed="compute.run_command_failed",
        args=args,
        location=vm["location"],
    )
    vm["_run_command"] = op["id"]
    call.store.touch()
    return lro.accepted(call.world, op, async_op=True)


def get_run_command(call: Call) -> Reply:
    from batchimage.sandbox.services.compute.urls import RUN_COMMANDS

    record = RUN_COMMANDS.find(call)
    out = arm.render(call.world, record)
    if "instanceview" in (call.arg("$expand") or "").lower():
        out["properties"]["instanceView"] = copy.deepcopy(record["properties"]["instanceView"])
    return Reply(200, out)
