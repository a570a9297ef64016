"""What a command says on stderr besides its events: the final error, a cancelled run,
log records. With `--log-format json` each is one JSON object on its own line, like the
events, so every line of that stream parses as JSON:

    {"ts": "...", "event": "error", "message": "state ... is locked by ...", "exit_code": 3}
    {"ts": "...", "event": "log", "level": "WARNING", "logger": "azure.core...", "message": "..."}

Otherwise they are plain text (`error: ...`, `%(asctime)s %(name)s: %(message)s`).
Everything is redacted.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from batchimage.core.events import Event
from batchimage.core.redact import redact

_json = False


def use_json(on: bool) -> None:
    """Say what follows as JSON lines (True) or text."""
    global _json
    _json = on


def json_lines() -> bool:
    """Whether stderr is a JSON stream (`--log-format json`)."""
    return _json


def json_requested(args: list[str]) -> bool:
    """Whether a command line asks for `--log-format json` (read before click parses it)."""
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            return args[i + 1] == "json"
        if arg.startswith("--log-format="):
            return arg.partition("=")[2] == "json"
    return False


def say(text: str, *, event: str = "run_note", **data: Any) -> None:
    """One line on stderr: `text`, or under JSON an `event` object whose message is `text`."""
    line = Event(event, message=text, data=data).to_json() if _json else redact(text)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def error(text: str, exit_code: int, *, prefix: str = "error: ") -> None:
    """The command's final error: `<prefix><text>`, or an `error` object with `exit_code`."""
    if _json:
        say(text, event="error", exit_code=exit_code)
    else:
        say(prefix + text)


class JsonLogHandler(logging.Handler):
    """Log records as `log` events on stderr (secrets redacted)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        event = Event(
            "log",
            message=message,
            data={"level": record.levelname, "logger": record.name},
            ts=record.created,
        )
        try:
            sys.stderr.write(event.to_json() + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            self.handleError(record)
