"""Microsoft.Compute's error answers, with the codes and messages Azure uses (sources in
docs/sandbox.md, section Compute)."""

from __future__ import annotations

from batchimage.sandbox.apierrors import ApiError, bad_request, conflict


def not_allowed(message: str) -> ApiError:
    """409 OperationNotAllowed: the resource's state forbids the operation."""
    return conflict("OperationNotAllowed", message)


def invalid_parameter(message: str, target: str | None = None) -> ApiError:
    return bad_request("InvalidParameter", message, target=target)


def missing(parameter: str) -> ApiError:
    return invalid_parameter(f"Required parameter '{parameter}' is missing (null).", parameter)


def vm_not_running() -> ApiError:
    return not_allowed("The operation requires the VM to be running (or set to run).")


def vm_generalized(operation: str, name: str) -> ApiError:
    return not_allowed(
        f"Operation '{operation}' is not allowed on VM '{name}' since the VM is generalized."
    )


def extensions_need_running_vm() -> ApiError:
    return not_allowed("Cannot modify extensions in the VM when the VM is not running.")


def nested_resources(ids: list[str]) -> ApiError:
    shown = ", ".join(i.split("/providers/", 1)[-1] for i in ids[:5])
    return conflict(
        "CannotDeleteResource",
        "Cannot delete resource while nested resources exist. Some existing nested resource "
        f"IDs include: '{shown}'. Please delete all nested resources before deleting this "
        "resource.",
    )


def run_command_busy() -> ApiError:
    return conflict(
        "Conflict",
        "Run command extension execution is in progress. Please wait for completion before "
        "invoking a run command.",
    )
