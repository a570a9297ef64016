"""What a run knows of the exceptions its steps let escape, handed to the engine and to
`retry_transient` so that neither knows any cloud:

    Failures()                      knows nothing: exceptions stay as they are, no hint
    batchimage.azure.errors.AZURE   Azure SDK exceptions become TransientAzureError or
                                    PermanentAzureError; an AzureError gets its next action

`classify(exc)` is the exception as one of ours (None: leave it as it is); `hint(err,
command)` is what a person should do about `err`, `command` being the one to run again
(None: the engine's own words).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from batchimage.core.errors import BatchImageError


def unknown(exc: BaseException) -> BatchImageError | None:
    """Classify nothing: every exception stays as it is."""
    return None


def no_hint(err: BaseException, command: str) -> str | None:
    """Say nothing of any error: the engine's own words stand."""
    return None


@dataclass(frozen=True)
class Failures:
    """How foreign exceptions become ours (`classify`) and what to do about one (`hint`)."""

    classify: Callable[[BaseException], BatchImageError | None] = unknown
    hint: Callable[[BaseException, str], str | None] = no_hint
