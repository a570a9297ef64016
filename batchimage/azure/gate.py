"""The gate every Azure request of a run passes: closed, it refuses them before they leave.

    gate = CallGate()
    clients = AzureClients(profile, sub, raw_request_hook=gate.hook, ...)
    gate.close("lost the lock on state ...")   # from any thread; the next request raises

azure-core calls `raw_request_hook` for every request of every SDK client (management,
Batch, blob), retries included, so a run that must stop (it lost its state lock) makes no
further call at all, whatever step or thread it is in.
"""

from __future__ import annotations

from typing import Any

from batchimage.core.errors import CallsStopped


class CallGate:
    """Open until `close`; then `hook` raises CallsStopped for every request."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def close(self, reason: str) -> None:
        """Refuse every later request, saying `reason`."""
        self.reason = reason

    def hook(self, request: Any) -> None:
        """The `raw_request_hook` of azure-core: raises when the gate is closed."""
        if self.reason is not None:
            raise CallsStopped(f"no more Azure calls: {self.reason}")
