"""Logging for `-v`: Azure SDK request logs to stderr, secrets redacted (text or JSON)."""

from __future__ import annotations

import logging
import sys


class _Redacting(logging.Filter):
    """Masks secrets in every log record (message and arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from batchimage.core.redact import redact

        record.msg = redact(record.getMessage())
        record.args = None
        return True


class _NotAzure(logging.Filter):
    """Drops the Azure SDKs' records (shown only with -v)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("azure")


def configure_logging(verbose: int, log_format: str = "text") -> None:
    """-v: Azure request/response lines; -vv: everything at DEBUG. Always redacted.

    Without -v the Azure SDKs' own log records are not shown (Python would print their
    warnings raw, e.g. azure-identity's many-line list of credentials it tried): the
    tool says what failed itself, in its own words. With `--log-format json` every record
    shown (and Python's warnings) is a `log` event: the stream holds only JSON lines.
    """
    from batchimage.ui_lines import JsonLogHandler

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "batchimage", False)]:
        root.removeHandler(old)
    json_lines = log_format == "json"
    handler: logging.Handler
    if verbose <= 0:
        azure = logging.getLogger("azure")
        if not any(isinstance(h, logging.NullHandler) for h in azure.handlers):
            azure.addHandler(logging.NullHandler())
        if not json_lines:
            return
        handler = JsonLogHandler(logging.WARNING)
        handler.addFilter(_NotAzure())
    elif json_lines:
        handler = JsonLogHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    handler.addFilter(_Redacting())
    setattr(handler, "batchimage", True)  # noqa: B010 - replaced on the next call
    root.addHandler(handler)
    if json_lines:
        logging.captureWarnings(True)
    if verbose <= 0:
        return
    root.setLevel(logging.WARNING)
    http = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    http.setLevel(logging.INFO)
    logging.getLogger("batchimage").setLevel(logging.INFO)
    if verbose >= 2:
        root.setLevel(logging.DEBUG)
