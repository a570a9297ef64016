"""Batch data-plane errors with the service's real codes, messages and `values`.

Codes and messages come from "Batch Status and Error Codes" (learn.microsoft.com
rest/api/batchservice/batch-status-and-error-codes) and the Batch SDKs'
BatchErrorCodeStrings / PoolResizeErrorCodes. Like the service, a message ends with
`RequestId:` and `Time:` lines; `values` carry PropertyName / Reason details.
"""

from __future__ import annotations

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call
from batchimage.sandbox.lro import iso


def batch_error(
    call: Call, status: int, code: str, message: str, values: dict[str, str] | None = None
) -> ApiError:
    """An ApiError rendered in the Batch shape (message stamped with request id and time)."""
    stamped = f"{message}\nRequestId:{call.request_id}\nTime:{iso(call.clock.now())}"
    pairs = [{"key": k, "value": v} for k, v in (values or {}).items()]
    return ApiError(status, code, stamped, values=pairs)


def invalid_property(call: Call, name: str, value: object, reason: str) -> ApiError:
    return batch_error(
        call,
        400,
        "InvalidPropertyValue",
        "The value provided for one of the properties in the request body is invalid.",
        {"PropertyName": name, "PropertyValue": str(value), "Reason": reason},
    )


def missing_property(call: Call, name: str) -> ApiError:
    return batch_error(
        call,
        400,
        "MissingRequiredProperty",
        "A required property was not specified in the request body.",
        {"PropertyName": name},
    )


def invalid_body(call: Call, reason: str) -> ApiError:
    return batch_error(
        call,
        400,
        "InvalidRequestBody",
        "The specified Request Body is not syntactically valid.",
        {"Reason": reason},
    )


def invalid_query(call: Call, name: str, value: str, reason: str) -> ApiError:
    return batch_error(
        call,
        400,
        "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid.",
        {"QueryParameterName": name, "QueryParameterValue": value, "Reason": reason},
    )


def not_found(call: Call, code: str, what: str) -> ApiError:
    """404 with `code` (PoolNotFound, NodeNotFound, JobNotFound, TaskNotFound, FileNotFound)."""
    return batch_error(call, 404, code, f"The specified {what} does not exist.")


def conflict(call: Call, code: str, message: str) -> ApiError:
    return batch_error(call, 409, code, message)


def invalid_state(call: Call, reason: str) -> ApiError:
    return batch_error(
        call,
        409,
        "OperationInvalidForCurrentState",
        "The specified operation is not valid for the current state of the resource.",
        {"Reason": reason},
    )


def condition_not_met(call: Call, status: int) -> ApiError:
    kind = "read" if status == 304 else "write"
    return batch_error(
        call,
        status,
        "ConditionNotMet",
        f"The condition specified in the conditional header(s) was not met for a {kind} operation.",
    )
