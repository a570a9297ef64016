"""What each Batch data-plane operation needs under Microsoft Entra ID, and the service's
refusal (403 AuthorizationFailure, "This request is not authorized to perform this
operation.", as Azure/BatchExplorer#2203 shows the service answering).

Pools and their nodes need the *actions* Microsoft.Batch/batchAccounts/pools/read, /write,
/delete; jobs and tasks the *data actions* Microsoft.Batch/batchAccounts/jobs/read, /write,
/delete, which Owner and Contributor (`*` actions, no data actions) do not grant; the
account-wide reads (supported images, node counts) Microsoft.Batch/batchAccounts/read
(learn.microsoft.com, Role-based access control for Azure Batch service: custom roles).
"""

from __future__ import annotations

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call
from batchimage.sandbox.services.batch_data.errors import batch_error
from batchimage.sandbox.services.batch_data.models.accounts import account_of

ACCOUNT = "Microsoft.Batch/batchAccounts"
_POOL_WRITES = (
    "CreatePool",
    "UpdatePool",
    "ReplacePoolProperties",
    "ResizePool",
    "StopPoolResize",
    "EnablePoolAutoScale",
    "DisablePoolAutoScale",
    "EvaluatePoolAutoScale",
)
_JOB_WRITES = ("Jobs_CreateJob", "Tasks_CreateTask", "Tasks_CreateTaskCollection")


def _permission(operation: str) -> tuple[str, bool]:
    """(action, is_data_action) of a data-plane operation (REST operationId)."""
    group, _, name = operation.partition("_")
    if group in ("Jobs", "Tasks"):
        if operation in _JOB_WRITES:
            return f"{ACCOUNT}/jobs/write", True
        return f"{ACCOUNT}/jobs/{'delete' if name.startswith('Delete') else 'read'}", True
    if name in ("ListSupportedImages", "ListPoolNodeCounts"):
        return f"{ACCOUNT}/read", False
    if name == "DeletePool":
        return f"{ACCOUNT}/pools/delete", False
    return f"{ACCOUNT}/pools/{'write' if name in _POOL_WRITES else 'read'}", False


def need(call: Call) -> tuple[str, str, bool] | None:
    """(account id, action, is_data_action); None when the account does not exist (the
    handler answers that)."""
    account = account_of(call.world, call.params.get("account", ""))
    if account is None:
        return None
    action, data = _permission(call.route.operation)
    return account.id, action, data


DENIED = "This request is not authorized to perform this operation."


def refuse(call: Call) -> ApiError:
    """The service's 403 for a principal without the operation's (data) action."""
    return batch_error(call, 403, "AuthorizationFailure", DENIED)
