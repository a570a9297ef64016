"""batchimage.azure.pollers on a stand-in for an SDK polling method, on a clock of its own."""

from __future__ import annotations

import pytest

from batchimage.azure import pollers
from batchimage.azure.pollers import Abandoned, abandon, fixed_rate

REQUEST_S = 0.3  # what each status request takes
INTERVAL_S = 1.0  # the service's Retry-After


class Method:
    """The four attributes of LROBasePolling the module uses; time passes only here."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.polled_at: list[float] = []

    def update_status(self) -> None:
        self.polled_at.append(self.clock[0])
        self.clock[0] += REQUEST_S

    def _extract_delay(self) -> float:
        return INTERVAL_S

    def _sleep(self, seconds: float) -> None:
        self.clock[0] += seconds

    def _delay(self) -> None:  # the SDK's own: the interval after each answer
        self._sleep(self._extract_delay())


class Poller:
    def __init__(self, method: Method) -> None:
        self.method = method

    def polling_method(self) -> Method:
        return self.method

    def done(self) -> bool:
        return False


def poll(method: Method, times: int) -> None:
    """What the SDK's thread does: poll, then pause, `times` over."""
    for _ in range(times):
        method.update_status()
        method._delay()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(pollers.time, "monotonic", lambda: now[0])
    return now


def test_the_sdk_drifts_by_a_request_per_poll(clock: list[float]) -> None:
    method = Method(clock)
    poll(method, 4)
    assert method.polled_at == pytest.approx([100.0, 101.3, 102.6, 103.9])


def test_fixed_rate_polls_one_interval_apart_from_start_to_start(clock: list[float]) -> None:
    method = Method(clock)
    assert fixed_rate(Poller(method)).polling_method() is method
    poll(method, 4)
    assert method.polled_at == pytest.approx([100.0, 101.0, 102.0, 103.0])


def test_an_abandoned_poller_stops_at_its_next_pause(clock: list[float]) -> None:
    method = Method(clock)
    fixed_rate(Poller(method))
    abandon(Poller(method))
    with pytest.raises(Abandoned):
        poll(method, 2)
    assert len(method.polled_at) == 1  # no request after it was abandoned
