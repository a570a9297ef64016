"""capture.version's wait (logic, fake clock): the version is read at a fixed rate from the
start and at once when the LRO's poller ends; the wait ends with whichever sees it done."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from batchimage.core.errors import PermanentAzureError
from batchimage.steps.base import RunContext
from batchimage.steps.create_image_version import CreateImageVersion, VersionInputs
from batchimage.ui import NullSink
from tests.engine.fakes import FakeClock

INTERVAL = 5.0
READ_TAKES = 0.2  # each read costs time: fixed-rate reads must not drift by it


class Poller:
    """An LRO poller that ends at `ends_at` on the fake clock; waiting moves the clock."""

    def __init__(self, clock: FakeClock, ends_at: float) -> None:
        self.clock, self.ends_at = clock, ends_at

    def done(self) -> bool:
        return self.clock.now >= self.ends_at

    def wait(self, timeout: float | None = None) -> None:
        self.clock.now = min(self.clock.now + (timeout or 0), max(self.clock.now, self.ends_at))

    def result(self, timeout: float | None = None) -> None:
        return None


class Version:
    """The version as reads see it: `state` until `ready_at`, then Succeeded."""

    def __init__(self, clock: FakeClock, ready_at: float, state: str = "Creating") -> None:
        self.clock, self.ready_at, self.state = clock, ready_at, state
        self.reads: list[float] = []

    def read(self, ctx: RunContext, name: str) -> Any:
        self.reads.append(self.clock.now)
        self.clock.now += READ_TAKES
        ready = self.reads[-1] >= self.ready_at
        return SimpleNamespace(
            provisioning_state="Succeeded" if ready else self.state, replication_status=None
        )


def wait(clock: FakeClock, version: Version, poller: Poller | None) -> float:
    """Run the step's wait; the fake seconds it took."""
    step = CreateImageVersion.__new__(CreateImageVersion)
    step.given = VersionInputs.model_construct(timeout_s=3600)
    step._read = version.read  # type: ignore[method-assign]
    clients = SimpleNamespace(profile=SimpleNamespace(time_scale=1.0))  # the wait's own 5 s
    ctx = RunContext(
        pipeline="p", run_id="r", events=NullSink(), clock=clock,
        clients_factory=lambda: clients,
    )  # fmt: skip
    start = clock.now
    step._wait_replicated(ctx, "1.0.0", poller)
    return clock.now - start


def test_reads_at_a_fixed_rate_end_the_wait_before_the_poller_sees_it() -> None:
    clock = FakeClock()
    start = clock.now
    version = Version(clock, ready_at=start + 30)
    took = wait(clock, version, Poller(clock, ends_at=start + 38))  # its own polls drifted
    assert [round(t - start, 3) for t in version.reads] == [0, 5, 10, 15, 20, 25, 30]
    assert took == pytest.approx(30 + READ_TAKES)


def test_the_lro_end_is_read_at_once() -> None:
    clock = FakeClock()
    start = clock.now
    version = Version(clock, ready_at=start + 12)
    took = wait(clock, version, Poller(clock, ends_at=start + 12))
    assert [round(t - start, 3) for t in version.reads] == [0, 5, 10, 12]
    assert took == pytest.approx(12 + READ_TAKES)


def test_without_a_poller_reads_once_per_interval_and_a_failed_version_fails() -> None:
    clock = FakeClock()
    start = clock.now
    version = Version(clock, ready_at=start + 1000, state="Failed")
    with pytest.raises(PermanentAzureError, match="ended in state Failed"):
        wait(clock, version, None)
    assert len(version.reads) == 1

    version = Version(clock, ready_at=clock.now + 9)
    wait(clock, version, None)
    assert len(version.reads) == 3  # at 0, 5 and 10 s: never more often than the interval
