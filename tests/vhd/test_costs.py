"""The put-cost estimate: a line fitted to (size, seconds) of the puts, and its break-even gap."""

from __future__ import annotations

import math
import random

import pytest

from batchimage.azure.vhd.costs import FLOOR_GAP, MAX_GAP, PRIOR_GAP, PutCosts, break_even

KIB = 1024
SIZES = [KIB, 4 * KIB, 16 * KIB, 64 * KIB, 512 * KIB, 4096 * KIB]


def feed(
    costs: PutCosts,
    request_seconds: float,
    rate: float,
    puts: int,
    seed: int = 1,
    noise: float = 0.1,
) -> None:
    """`puts` measurements of a target with these costs, sizes mixed, +- `noise` of each."""
    rng = random.Random(seed)
    for _ in range(puts):
        size = rng.choice(SIZES)
        costs.observe(size, (request_seconds + size / rate) * rng.uniform(1 - noise, 1 + noise))


def test_nothing_measured_gives_the_prior() -> None:
    estimate = PutCosts().estimate()
    assert (estimate.join_gap, estimate.measured, estimate.samples) == (PRIOR_GAP, False, 0)


def test_puts_of_one_size_cannot_separate_the_costs() -> None:
    costs = PutCosts()
    for _ in range(500):
        costs.observe(64 * KIB, 0.05)
    estimate = costs.estimate()
    assert not estimate.measured and estimate.join_gap == PRIOR_GAP and estimate.samples == 500


@pytest.mark.parametrize(
    ("request_seconds", "rate"),
    [(0.010, 40e6), (0.080, 10e6), (0.0005, 500e6)],  # Azurite-like, far away, a fast LAN
)
def test_the_fit_recovers_the_costs(request_seconds: float, rate: float) -> None:
    costs = PutCosts()
    feed(costs, request_seconds, rate, 400)
    estimate = costs.estimate()
    assert estimate.measured
    assert estimate.request_seconds == pytest.approx(request_seconds, rel=0.3)
    assert estimate.bytes_per_second == pytest.approx(rate, rel=0.1)
    assert estimate.join_gap == pytest.approx(break_even(request_seconds, rate), rel=0.35)


def test_slow_requests_justify_wider_gaps() -> None:
    far, near = PutCosts(), PutCosts()
    feed(far, 0.080, 10e6, 300)  # 80 ms a request: 800 kB of zeros cost as much
    feed(near, 0.002, 40e6, 300)  # 2 ms a request: 80 kB
    assert far.estimate().join_gap > 5 * near.estimate().join_gap


def test_the_estimate_follows_a_target_that_changes() -> None:
    costs = PutCosts(memory=128)
    feed(costs, 0.002, 40e6, 400)
    before = costs.estimate().join_gap
    feed(costs, 0.050, 40e6, 1000, seed=2)  # the link got a long round trip
    assert costs.estimate().join_gap > 10 * before


def test_the_gap_stays_between_the_floor_and_a_block() -> None:
    assert break_even(0.0, 1e9) == FLOOR_GAP
    assert break_even(10.0, 1e9) == MAX_GAP
    assert break_even(1.0, math.inf) == MAX_GAP
    tiny = PutCosts()
    feed(tiny, 0.0001, 5e6, 300, noise=0.001)  # 0.1 ms a request at 5 MB/s: 500 bytes
    assert tiny.estimate().measured and tiny.estimate().join_gap == FLOOR_GAP
    huge = PutCosts()
    feed(huge, 2.0, 1e9, 300)  # 2 s a request: 2 GB
    assert huge.estimate().measured and huge.estimate().join_gap == MAX_GAP


def test_a_cost_within_the_noise_keeps_the_prior() -> None:
    bytes_only = PutCosts()
    feed(bytes_only, 0.0, 50e6, 300)  # no fixed cost: the fit's is noise around zero
    estimate = bytes_only.estimate()
    assert (estimate.join_gap, estimate.measured, estimate.samples) == (PRIOR_GAP, False, 300)


def test_a_throughput_within_the_noise_counts_at_its_lowest() -> None:
    requests_only = PutCosts()
    rng = random.Random(3)
    for _ in range(300):  # bytes cost nothing visible: 10 ms, +- 5 ms, whatever the size
        requests_only.observe(rng.choice(SIZES), rng.uniform(0.005, 0.015))
    estimate = requests_only.estimate()
    # 10 ms x the lowest throughput the scatter allows (over 4 MiB puts, +- 5 ms: some GB/s)
    assert estimate.measured and estimate.join_gap == MAX_GAP


def test_known_costs_are_not_learnt() -> None:
    costs = PutCosts.known(0.004, 25e6)
    feed(costs, 0.5, 1e6, 100)
    estimate = costs.estimate()
    assert estimate.join_gap == 100_000 and estimate.measured
