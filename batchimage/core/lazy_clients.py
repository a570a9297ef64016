"""A run's Azure clients, built once on first use by a factory, so a run that needs none
(a plan from state alone) needs no credentials."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(kw_only=True)
class LazyClients:
    """`clients`: what `clients_factory` builds, once however many threads or views ask.

    Views copied from this one (`dataclasses.replace`) share the clients once built."""

    clients_factory: Callable[[], Any] | None = None
    _clients: list[Any] = field(default_factory=list)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def clients(self) -> Any:
        """The Azure clients (built once per run, on first use)."""
        with self._clients_lock:
            if not self._clients:
                if self.clients_factory is None:
                    raise RuntimeError("this run has no Azure clients (offline)")
                self._clients.append(self.clients_factory())
            return self._clients[0]
