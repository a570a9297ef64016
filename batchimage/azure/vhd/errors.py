"""Errors of the VHD library.

    BatchImageError
    ├── VhdError          the local file is not an uploadable fixed VHD (exit 2)
    ├── VhdChangedError   the local file changed while it was being uploaded (exit 1)
    └── VhdVerifyError    the blob's content does not match the file (exit 1)

Storage failures are batchimage.core.errors.AzureError (transient or permanent), mapped by
batchimage.azure.errors.translate at each SDK call in `upload`.
"""

from __future__ import annotations

from batchimage.core.errors import EXIT_INVALID, BatchImageError


class VhdError(BatchImageError):
    """The file cannot be uploaded as it is; the message says how to convert or fix it."""

    exit_code = EXIT_INVALID


class VhdChangedError(BatchImageError):
    """The local file changed during the upload; the next run starts the blob over."""


class VhdVerifyError(BatchImageError):
    """The uploaded blob does not hold the file's content (a hash or page map differs)."""
