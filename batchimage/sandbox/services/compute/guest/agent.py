"""The guest agent's life in a sandbox VM, and what a script does to the guest.

Run commands (action and managed) reach the guest only through its agent: a command
reports only while the VM runs and its agent is up (`reports`). A script that stops the
agent (`waagent -deprovision` stops its service first: Azure/WALinuxAgent,
azurelinuxagent/pa/deprovision/default.py) or powers the VM off under it never reports:
the caller keeps the command in progress (Azure/WALinuxAgent#3547, #2006, #365;
Azure/azure-cli#14642). Once stopped, the agent stays stopped (`_agent` on the VM record;
a restart does not bring it back in the sandbox: the deprovision deleted its state) and the
instance view reports it Not Ready (`vms.instance_view`).

`apply` puts a finished script's traces on the OS disk and its effects on the VM; work the
script left behind (a detached `systemd-run` unit, sysprep finishing) runs on timers.
"""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import clock
from batchimage.sandbox.context import World
from batchimage.sandbox.services.compute.guest import scripts
from batchimage.sandbox.services.compute.models import vms


def reports(vm: dict[str, Any]) -> bool:
    """Whether a run command on `vm` can end now: the VM runs and its agent is up."""
    return vm.get("_power") == "running" and vms.agent_ready(vm)


def _deprovision(world: World, vm: dict[str, Any]) -> None:
    """`waagent -deprovision`: the agent stops first, then the disk is deprovisioned."""
    vm["_agent"] = "stopped"
    vms.disk_content(world, vm)["deprovisioned"] = True


def apply(world: World, vm: dict[str, Any], run: scripts.ScriptRun) -> None:
    """A script ran in `vm`: its manifest entries and effects now, its later work on timers."""
    disk = vms.disk_content(world, vm)
    disk["manifest"].extend(run.entries)
    if run.deprovisioned:
        _deprovision(world, vm)
    if run.agent_stops:
        vm["_agent"] = "stopped"
    if run.setup_state is not None:
        disk["setup_state"] = run.setup_state
    if run.powers_off:
        vm["_power"] = "stopped"
    for item in run.later:
        if "sysprep" in item:
            args = {"vm": vm["id"], "shutdown": bool(item["shutdown"])}
            clock.schedule(world, float(item["sysprep"]), "compute.sysprep_done", args)
        else:
            args = {
                "vm": vm["id"],
                "deprovision": bool(item["deprovision"]),
                "shutdown": bool(item["shutdown"]),
            }
            clock.schedule(world, float(item["delay"]), "compute.unit_runs", args)
    vms.save_disk(world, vm)


@clock.action("compute.unit_runs")
def _unit_runs(world: World, args: dict[str, Any]) -> None:
    """A detached systemd unit runs: deprovision, then power off (a VM that stopped or
    restarted since lost the transient unit, so nothing happens)."""
    vm = vms.find_vm(world, args["vm"])
    if vm is None or vm.get("_power") != "running":
        return
    if args.get("deprovision"):
        _deprovision(world, vm)
    if args.get("shutdown"):
        vm["_power"] = "stopped"
    vms.save_disk(world, vm)


@clock.action("compute.sysprep_done")
def _sysprep_done(world: World, args: dict[str, Any]) -> None:
    """Sysprep finished: the disk is sealed; with `/shutdown` the VM stops."""
    vm = vms.find_vm(world, args["vm"])
    if vm is None or vm.get("_power") != "running":
        return
    vms.disk_content(world, vm)["deprovisioned"] = True
    if args.get("shutdown"):
        vm["_power"] = "stopped"
    vms.save_disk(world, vm)
