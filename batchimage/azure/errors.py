"""The one place that maps azure.core / azure.identity exceptions to batchimage.core.errors.

    translate(exc, operation) -> TransientAzureError | PermanentAzureError
    with azure_call("create VM bi-demo-vm"): ...   # raises ours `from` theirs
    Engine(..., failures=AZURE)                     # SDK exceptions mapped, next actions said

Transient (the engine retries the step): HTTP 408/429/5xx, connection and read
failures, timeouts, and conflict codes that clear by themselves (another operation in
progress, a group or pool still being deleted, an operation preempted, a resource busy).
Everything else is permanent and stops the run at once - the run command Conflict too:
it clears only when the VM's run command in progress ends, and one whose guest agent
stopped never ends (Azure/azure-cli#14642). The error keeps what a support
ticket needs: Azure error code, message, HTTP status, operation, x-ms-request-id and
correlation id, and the Retry-After the service asked for.

`SDK_RETRY` bounds the SDK's own per-request retry so the two retry layers do not multiply
(see docs/state.md for the resulting worst case).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

from azure.core.exceptions import (
    AzureError as SdkAzureError,
)
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from batchimage.core.errors import AzureError, PermanentAzureError, TransientAzureError, run_again
from batchimage.core.failures import Failures
from batchimage.core.redact import redact

# Keyword arguments for every SDK client: a bounded per-request retry (the SDK default is
# 10 attempts with backoff up to 2 minutes; the engine retries whole steps on top).
SDK_RETRY: dict[str, Any] = {"retry_total": 3, "retry_backoff_factor": 0.8, "retry_backoff_max": 20}

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

# Codes that mean "not now" rather than "no", whatever the status.
TRANSIENT_CODES = frozenset(
    {
        "AnotherOperationInProgress",
        "RetryableError",
        "OperationPreempted",
        "ResourceGroupBeingDeleted",
        "PoolBeingDeleted",
        "InternalExecutionError",
        "InternalOperationError",
        "InternalServerError",
        "InternalError",
        "ServerBusy",
        "ServerTimeout",
        "OperationTimedOut",
        "GatewayTimeout",
        "ServiceUnavailable",
        "TooManyRequests",
        "SubscriptionRequestsThrottled",
        "ResourceCollectionRequestsThrottled",
        "ResourceRequestsThrottled",
    }
)

# Codes Azure uses both for "busy, try later" and for "never" (quota): transient only when
# the message says the resource is busy.
BUSY_CODES = frozenset({"OperationNotAllowed", "Conflict", "ConflictingOperation"})
BUSY_MESSAGE = re.compile(
    r"in progress|is being |currently being|is busy|try (?:again|later)|retry later|"
    r"another operation|pending operation|is transitioning",
    re.IGNORECASE,
)
QUOTA_MESSAGE = re.compile(r"quota|exceed", re.IGNORECASE)
# 409 Conflict "Run command extension execution is in progress. Please wait for completion
# before invoking a run command." (Azure/azure-cli#32305): one action run command per VM.
RUN_COMMAND_BUSY = re.compile(r"Run command extension execution is in progress", re.IGNORECASE)
# a Batch data-plane job or task operation (the smoke test): what data roles are about
BATCH_DATA = re.compile(r"\b(job|task)\b", re.IGNORECASE)
AUDIENCE = "audience"

NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFound",
        "NotFound",
        "ResourceGroupNotFound",
        "BlobNotFound",
        "ContainerNotFound",
        "PoolNotFound",
        "GalleryImageNotFound",
        "ParentResourceNotFound",
    }
)


def translate(exc: BaseException, operation: str | None = None) -> AzureError:
    """Map one exception from the Azure SDKs to TransientAzureError or PermanentAzureError."""
    if isinstance(exc, AzureError):
        return exc
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        return _from_response(exc, operation)
    if isinstance(exc, ClientAuthenticationError):
        return PermanentAzureError(
            _first_line(exc) or "could not get an Azure access token",
            code="AuthenticationFailed",
            operation=operation,
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, DecodeError)):
        kind = "Timeout" if "timeout" in type(exc).__name__.lower() else "ConnectionError"
        return TransientAzureError(_first_line(exc) or kind, code=kind, operation=operation)
    if isinstance(exc, HttpResponseError):  # no response at all: treat like a dropped connection
        return TransientAzureError(_first_line(exc), code="NoResponse", operation=operation)
    if isinstance(exc, TimeoutError | ConnectionError):
        return TransientAzureError(
            str(exc) or type(exc).__name__, code=type(exc).__name__, operation=operation
        )
    return PermanentAzureError(_first_line(exc) or type(exc).__name__, operation=operation)


def classify(exc: BaseException) -> AzureError | None:
    """An exception of the Azure SDKs (a module under `azure.`) as ours; None for any other."""
    if type(exc).__module__.startswith("azure."):
        return translate(exc)
    return None


def hint_for(err: BaseException, command: str) -> str | None:
    """`next_action` for an AzureError; None for any other error."""
    return next_action(err, command) if isinstance(err, AzureError) else None


def failed_operation(exc: BaseException, poller: Any, operation: str) -> AzureError:
    """Map what waiting on `poller` raised. A long-running operation that ended Failed or
    Canceled surfaces as the last poll's answer (HTTP 200, the poll's request id): report it
    as the operation's - its final status, and the request id and correlation id of the
    request that started it, which is what Azure support can trace."""
    err = translate(exc, operation)
    status = getattr(exc, "status_code", None)
    if not isinstance(exc, HttpResponseError) or status is None or not 200 <= status < 300:
        return err
    started = _initial_headers(poller)
    ended = _final_status(exc) or "Failed"
    return type(err)(
        err.message,
        code=err.code,
        operation=operation,
        request_id=started.get("x-ms-request-id") or err.request_id,
        correlation_id=started.get("x-ms-correlation-request-id") or err.correlation_id,
        retry_after=err.retry_after,
        ended=ended,
    )


def _initial_headers(poller: Any) -> dict[str, str]:
    """The headers of the response that started a poller's operation (empty if unknown)."""
    try:
        method = poller.polling_method()
        initial = method._initial_response  # azure-core LROBasePolling keeps it
        headers = initial.http_response.headers
    except AttributeError:
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _final_status(exc: HttpResponseError) -> str | None:
    """`status` of the operation's last answer (Failed, Canceled), from its JSON body."""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else None
    except (ValueError, AttributeError, DecodeError):
        return None
    if not isinstance(body, Mapping):
        return None
    value = body.get("status") or (body.get("properties") or {}).get("provisioningState")
    return str(value) if value else None


@contextmanager
def azure_call(operation: str) -> Iterator[None]:
    """Run a block of SDK calls; any SDK exception leaves it as ours, naming `operation`."""
    try:
        yield
    except (SdkAzureError, TimeoutError, ConnectionError) as exc:
        raise translate(exc, operation) from exc


def is_not_found(err: BaseException) -> bool:
    """True when `err` (ours or the SDK's) says the resource does not exist."""
    if not isinstance(err, AzureError):
        if not isinstance(err, HttpResponseError):
            return False
        err = translate(err)
    return err.status == 404 or (err.code or "") in NOT_FOUND_CODES


def is_run_command_busy(err: AzureError) -> bool:
    """True when `err` is Azure refusing a run command because one is still in progress."""
    return (err.code or "") == "Conflict" and bool(RUN_COMMAND_BUSY.search(err.message))


def next_action(err: AzureError, command: str = "apply") -> str:
    """What a person should do about `err`, in one sentence; `command` is the one to run
    again (apply, plan, destroy)."""
    code = (err.code or "").lower()
    if is_run_command_busy(err):
        return (
            "the VM still has a run command in progress and Azure accepts no other until it "
            "ends; one whose guest agent stopped (waagent -deprovision or a shutdown in its "
            "script) never ends, and restarting the VM does not clear it: see what runs in "
            "the VM's instance view (az vm get-instance-view: the RunCommandLinux or "
            "RunCommandWindows extension), then delete the build VM (batchimage destroy) "
            "and run apply again."
        )
    if isinstance(err, TransientAzureError):
        return f"Azure kept failing with a passing error; run {command} again later to resume."
    wrong_audience = code == "invalidauthenticationtokenaudience" or AUDIENCE in err.message
    if err.status == 401 and wrong_audience:
        return (
            "the access token was issued for another service than the one called: each service "
            "takes only its own audience (ARM: the cloud's resource manager audience; Batch: "
            "https://batch.core.windows.net//.default, with both slashes; Storage: "
            f"https://storage.azure.com/.default); fix the cloud profile, then run {command} "
            "again."
        )
    if err.status == 401 or "authentic" in code or code == "invalidauthenticationtoken":
        return (
            "sign in (az login) or set AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET "
            f"for a service principal, then run {command} again."
        )
    if code == "authorizationfailure" and err.operation and BATCH_DATA.search(err.operation):
        return (
            "the Batch account refused: jobs and tasks need data actions "
            "(Microsoft.Batch/batchAccounts/jobs/*) that Owner and Contributor do not grant; "
            "assign 'Azure Batch Data Contributor' (or 'Azure Batch Job Submitter') on the Batch "
            'account: az role assignment create --role "Azure Batch Data Contributor" '
            f"--assignee <your object id> --scope <the account's id>, then run {command} again."
        )
    if err.status == 403 or "authorization" in code or "forbidden" in code:
        return (
            "give the identity a role that allows this operation on the resource (for example "
            f"Contributor on the resource group), then run {command} again."
        )
    if "quota" in code or QUOTA_MESSAGE.search(err.message) or "skunotavailable" in code:
        return "request a quota increase or choose another VM size or region in the spec."
    if "missingsubscriptionregistration" in code or "notregistered" in code:
        return "register the resource provider (az provider register --namespace ...), then retry."
    if err.status == 404 or code in {c.lower() for c in NOT_FOUND_CODES}:
        return "check that the resource named in the spec exists and the name is spelt right."
    if err.status == 400 or "invalid" in code or "badrequest" in code:
        return f"fix the spec field the message points at, then run {command} again."
    return f"fix the cause above, then {run_again(command)}."


# what the engine and `retry_transient` are given to meet Azure's exceptions
AZURE = Failures(classify=classify, hint=hint_for)


def _from_response(exc: HttpResponseError, operation: str | None) -> AzureError:
    status = exc.status_code
    code, message = _code_and_message(exc)
    headers = _headers(exc)
    request_id = headers.get("x-ms-request-id") or headers.get("request-id")
    correlation = headers.get("x-ms-correlation-request-id") or headers.get("client-request-id")
    retry_after = retry_after_seconds(headers)
    transient = (
        status in TRANSIENT_STATUS
        or (code or "") in TRANSIENT_CODES
        or (
            (code or "") in BUSY_CODES
            and bool(BUSY_MESSAGE.search(message))
            and not QUOTA_MESSAGE.search(message)
            and not RUN_COMMAND_BUSY.search(message)
        )
    )
    cls = TransientAzureError if transient else PermanentAzureError
    return cls(
        redact(message),
        code=code,
        status=status,
        operation=operation,
        request_id=request_id,
        correlation_id=correlation,
        retry_after=retry_after,
    )


def _code_and_message(exc: HttpResponseError) -> tuple[str | None, str]:
    code: str | None = None
    message: str | None = None
    model = getattr(exc, "model", None)
    if model is not None:  # azure-batch: BatchError(code, message=BatchErrorMessage(value))
        code = getattr(model, "code", None)
        msg = getattr(model, "message", None)
        message = getattr(msg, "value", None) or (msg if isinstance(msg, str) else None)
    error = exc.error
    if error is not None:
        code = code or error.code
        raw = error.message
        if isinstance(raw, Mapping):  # Batch JSON: "message": {"lang": .., "value": ..}
            raw = raw.get("value")
        message = message or (str(raw) if raw else None)
    storage_code = getattr(exc, "error_code", None)
    if storage_code and not code:
        code = str(getattr(storage_code, "value", storage_code))
    if not code:
        code = _headers(exc).get("x-ms-error-code")
    return code, message or _first_line(exc) or (exc.reason or f"HTTP {exc.status_code}")


def _headers(exc: HttpResponseError) -> dict[str, str]:
    headers = getattr(exc.response, "headers", None)
    if headers is None:
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds the service asked us to wait (Retry-After seconds or HTTP date, or -ms forms)."""
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return redact(lines[0]) if lines else ""
