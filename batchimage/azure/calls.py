"""What the Azure edge is given to make calls: the client bundle and a waiter (progress words,
waits on pollers, polls, a clock). Never the run: the edge knows no spec, pipeline or step.

    def create(calls: Calls, ...) -> ...:
        poller = calls.clients.compute.virtual_machines.begin_create_or_update(...)
        return calls.wait(poller, "VM x to be created")

A step's `RunContext` is one (the protocol is structural); tests may pass their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from batchimage.core.waiting import Clock, Poller

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients

T = TypeVar("T")


class Calls(Protocol):
    """The client bundle and the waiter the edge's operations use."""

    clock: Clock

    @property
    def clients(self) -> AzureClients: ...

    def say(self, message: str, **data: Any) -> None: ...

    def sleep(self, seconds: float) -> None: ...

    def wait(self, poller: Poller, what: str, *, timeout_s: float | None = None) -> Any: ...

    def poll(
        self,
        probe: Callable[[], T | None],
        what: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float | None = None,
        waiter: Callable[[float], None] | None = None,
        phase_from: float | None = None,
    ) -> T: ...
