"""Errors of the VHD library, and the one place that maps azure.core exceptions for it.

BatchImageError
├── VhdError                    the local file is not an uploadable fixed VHD (exit 2)
├── VhdChangedError             the local file changed while it was being uploaded (exit 1)
├── VhdVerifyError              the blob's content does not match the file (exit 1)
└── AzureError (from batchimage.errors; Transient/Permanent) for storage failures
"""

from __future__ import annotations

from batchimage.errors import (
    EXIT_INVALID,
    AzureError,
    BatchImageError,
    PermanentAzureError,
    TransientAzureError,
)


class VhdError(BatchImageError):
    """The file cannot be uploaded as it is; the message says how to convert or fix it."""

    exit_code = EXIT_INVALID


class VhdChangedError(BatchImageError):
    """The local file changed during the upload; the next run starts the blob over."""


class VhdVerifyError(BatchImageError):
    """The uploaded blob does not hold the file's content (a hash or page map differs)."""


_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
_TRANSIENT_CODES = {"ServerBusy", "OperationTimedOut", "InternalError", "LeaseIdMissing"}


def map_storage_error(exc: Exception, operation: str) -> AzureError:
    """An AzureError (transient or permanent) describing a failed storage call `operation`."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientAzureError(
            f"could not reach blob storage: {exc}", operation=operation, code="ConnectionError"
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        raw_code = getattr(exc, "error_code", None)
        code = str(getattr(raw_code, "value", raw_code)) if raw_code else None
        headers = getattr(exc.response, "headers", None) or {}
        request_id = headers.get("x-ms-request-id")
        raw_retry = headers.get("Retry-After")
        retry_after = float(raw_retry) if raw_retry and raw_retry.isdigit() else None
        message = (exc.message or str(exc)).splitlines()[0]
        transient = (status in _TRANSIENT_STATUS or code in _TRANSIENT_CODES) and not isinstance(
            exc, ClientAuthenticationError
        )
        kind = TransientAzureError if transient else PermanentAzureError
        return kind(
            message,
            code=code,
            status=status,
            operation=operation,
            request_id=request_id,
            retry_after=retry_after,
        )
    return PermanentAzureError(str(exc), operation=operation)
