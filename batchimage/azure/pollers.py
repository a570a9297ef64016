"""Ending the SDK's polling thread of a long-running operation nobody waits for any more."""

from __future__ import annotations

from typing import Any


class Abandoned(Exception):
    """What the thread of an abandoned poller ends with (never raised to the tool)."""


def abandon(poller: Any) -> None:
    """Make `poller`'s thread stop at its next pause, without another request (nothing when
    the operation has ended). azure-core's LROPoller has no cancel: its thread polls until
    Azure ends the operation (a run command: up to 90 minutes), which in a process that goes
    on (tests, a rehearsal) is a thread left polling. The operation itself goes on in Azure."""
    if poller.done():
        return
    method = poller.polling_method()
    if not hasattr(method, "_delay"):  # LROBasePolling and ARMPolling pause in `_delay`
        return

    def stop() -> None:
        raise Abandoned("batchimage stopped waiting for this operation")

    method._delay = stop
