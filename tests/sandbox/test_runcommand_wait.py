"""batchimage.azure.runcommand.run's wait, through the real ComputeManagementClient: between
its polls it waits on the SDK poller (which returns as soon as the operation ends), never
a blind sleep that would see the end up to a poll interval late."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from batchimage.azure.clients import AzureClients
from batchimage.azure.runcommand import run
from batchimage.core.waiter import Waiter
from batchimage.core.waiting import Clock
from batchimage.ui import CollectSink
from tests.sandbox import batch_support
from tests.sandbox import test_compute_runcommands as runcommands

durations = batch_support.durations
group, vm = runcommands.group, runcommands.vm


class CountingClock(Clock):
    """The real clock, counting its sleeps."""

    def __init__(self) -> None:
        self.sleeps = 0

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.sleeps += 1
        super().sleep(seconds, stop)


@dataclass(kw_only=True)
class Edge(Waiter):
    """The edge's view of a run: a waiter and the client bundle."""

    bundle: AzureClients
    waits: list[float] = field(default_factory=list)

    @property
    def clients(self) -> AzureClients:
        return self.bundle

    def poll(self, probe: Any, what: str, **options: Any) -> Any:
        waiter = options.get("waiter")
        if waiter is not None:
            options["waiter"] = lambda seconds: (self.waits.append(seconds), waiter(seconds))
        return super().poll(probe, what, **options)


def test_a_run_command_is_waited_for_on_its_poller_not_by_sleeping(
    clients: AzureClients, group: str, vm: str, durations: Any
) -> None:
    durations(**{"vm.run_command": 1500})  # 0.3 s of real time (its timeout: 1800 s): many polls
    clock = CountingClock()
    edge = Edge(events=CollectSink(), clock=clock, bundle=clients)
    result = run(
        edge, group, vm, "wait-test", "echo hi", os_type="linux", location="eastus", tags={}
    )
    assert result.succeeded
    assert edge.waits  # it waited between polls ...
    assert clock.sleeps == 0  # ... on the poller, never a fixed sleep
