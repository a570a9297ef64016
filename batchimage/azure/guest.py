"""The build VM through Azure: what it says about the guest, from the VM read with its
instance view (the power state, whether the guest agent - the only channel run commands
have - is Ready), and the operations on the VM itself (tags, start, deallocate,
generalize, extensions).

    vm = read_vm(ctx, group, name)        # None when the VM is gone
    power_state(vm)                       # "running", "stopped", "deallocated", ...
    agent_ready(vm)                       # True Ready, False Not Ready, None not reported
    set_tags(ctx, group, name, tags)      # replace the VM's tags (a PATCH), waited for
    start(ctx, group, name); restart(...); deallocate(...); mark_generalized(...)  # waited for
    extensions(ctx, group, name); remove_extension(ctx, group, name, extension)

An agent that stopped (`waagent -deprovision` stops it) shows `vmAgent` status "Not Ready"
(code ProvisioningState/Unavailable; Azure/WALinuxAgent#652); a VM that is not running
shows no `vmAgent` at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from batchimage.azure.arm import begin_and_wait, get_or_none, text
from batchimage.azure.errors import azure_call

if TYPE_CHECKING:
    from batchimage.azure.calls import Calls


def read_vm(ctx: Calls, group: str, name: str) -> Any:
    """VM `name` with its instance view (power and OS state), or None when it is gone."""
    vms = ctx.clients.compute.virtual_machines
    return get_or_none(f"read VM {name}", vms.get, group, name, expand="instanceView")


def set_tags(ctx: Calls, group: str, name: str, tags: Mapping[str, str]) -> None:
    """Replace VM `name`'s tags with `tags` (an update of the VM), and wait for it."""
    begin_and_wait(
        ctx,
        f"tag VM {name}",
        f"{name} tags",
        ctx.clients.compute.virtual_machines.begin_update,
        group,
        name,
        {"tags": dict(tags)},
    )


def write_vm(
    ctx: Calls, group: str, name: str, body: Mapping[str, Any], *, timeout_s: float | None = None
) -> Any:
    """Create or update VM `name` with `body` (the VM's REST body), wait for it, and return
    the VM as the operation's final read gave it (no instance view)."""
    ops = ctx.clients.compute.virtual_machines
    return begin_and_wait(
        ctx,
        f"create VM {name}",
        f"build VM {name}",
        ops.begin_create_or_update,
        group,
        name,
        dict(body),
        timeout_s=timeout_s,
    )


def start(ctx: Calls, group: str, name: str, *, timeout_s: float | None = None) -> None:
    """Start VM `name` and wait until it runs."""
    _power(ctx, "start", group, name, timeout_s)


def capture_vhds(
    ctx: Calls, group: str, name: str, *, prefix: str, container: str, timeout_s: float | None
) -> None:
    """Capture generalized VM `name`'s unmanaged disks as VHDs `<prefix>*` in its storage
    account's `system` container under `container` (overwriting), and wait for it."""
    ops = ctx.clients.compute.virtual_machines
    body = {"vhdPrefix": prefix, "destinationContainerName": container, "overwriteVhds": True}
    begin_and_wait(
        ctx,
        f"capture VM {name}",
        f"capture of {name}",
        ops.begin_capture,
        group,
        name,
        body,
        timeout_s=timeout_s,
    )


def restart(ctx: Calls, group: str, name: str, *, timeout_s: float | None = None) -> None:
    """Restart VM `name` and wait for the restart (not for its guest agent)."""
    _power(ctx, "restart", group, name, timeout_s)


def deallocate(ctx: Calls, group: str, name: str, *, timeout_s: float | None = None) -> None:
    """Deallocate VM `name` and wait until it is."""
    _power(ctx, "deallocate", group, name, timeout_s)


def mark_generalized(ctx: Calls, group: str, name: str) -> None:
    """Mark deallocated VM `name` generalized (an image can be captured from it then)."""
    with azure_call(f"generalize VM {name}"):
        ctx.clients.compute.virtual_machines.generalize(group, name)


def extensions(ctx: Calls, group: str, name: str) -> list[str]:
    """The names of VM `name`'s extensions."""
    with azure_call(f"list extensions of VM {name}"):
        found = ctx.clients.compute.virtual_machine_extensions.list(group, name)
    items = getattr(found, "value", found) or []
    return [text(e.name) for e in items]


def remove_extension(ctx: Calls, group: str, name: str, extension: str) -> None:
    """Delete extension `extension` from VM `name`, and wait for it."""
    ops = ctx.clients.compute.virtual_machine_extensions
    begin_and_wait(
        ctx,
        f"delete extension {extension}",
        f"extension {extension} to be removed",
        ops.begin_delete,
        group,
        name,
        extension,
    )


def statuses(vm: Any) -> list[str]:
    """The status codes of a VM read with its instance view (e.g. PowerState/running)."""
    view = getattr(vm, "instance_view", None)
    return [text(s.code) for s in (getattr(view, "statuses", None) or []) if s.code]


def power_state(vm: Any) -> str:
    """running, stopped, deallocated, ... ("unknown" when not reported)."""
    for code in statuses(vm):
        if code.lower().startswith("powerstate/"):
            return code.split("/", 1)[1].lower()
    return "unknown"


def agent_ready(vm: Any) -> bool | None:
    """Whether the guest agent reports Ready (None: no agent status, e.g. VM not running)."""
    view = getattr(vm, "instance_view", None)
    agent = getattr(view, "vm_agent", None)
    found = [s for s in (getattr(agent, "statuses", None) or []) if s.display_status or s.code]
    if not found:
        return None
    return any(text(s.display_status or "").strip().lower() == "ready" for s in found)


def _power(ctx: Calls, verb: str, group: str, name: str, timeout_s: float | None) -> None:
    """`begin_<verb>` of VM `name` (start, restart, deallocate), waited for."""
    start = getattr(ctx.clients.compute.virtual_machines, f"begin_{verb}")
    begin_and_wait(
        ctx, f"{verb} VM {name}", f"{name} to {verb}", start, group, name, timeout_s=timeout_s
    )
