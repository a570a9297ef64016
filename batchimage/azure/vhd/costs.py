"""What a Put Page costs on this target, learnt from the puts an upload makes as it goes.

    costs = PutCosts()
    costs.observe(size, seconds)     # after each successful put, from any thread
    costs.estimate().join_gap        # bytes: a zero gap this small is worth sending

A put takes a fixed time per request (round trip, the service's work per request, the
client's) plus its bytes over a throughput. Joining two data runs across a zero gap of g
bytes saves one request and sends g zero bytes more, so it pays when
g / throughput < fixed time, i.e. when g is below the break-even gap fixed time x
throughput. Both are fitted as the line seconds = fixed + bytes / throughput by least
squares over the recent puts (exponentially weighted over about `memory` puts, so the
estimate follows a target whose speed changes). The puts are timed under the upload's own
concurrency, so the throughput is the share of the link one put gets while the others run:
the rule weighs a request against bytes the way the whole upload experiences them.

Until the puts measured differ enough in size to tell the fixed time from the throughput,
and while the fixed time is within the noise of the measurements (less than twice its
standard error: puts timed on a busy machine or link scatter), the estimate is a
conservative prior (`PRIOR_GAP`: the tail of one 4 KiB file-system block). Once it is
not, the gap is the fixed time x the lowest throughput the noise allows (the bytes' cost
plus twice its standard error), so a noisy fit joins less rather than more. The gap is
never below `FLOOR_GAP`: a request's own headers (request and response) cost about that
many bytes on the wire, on any link.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

FLOOR_GAP = 1024  # bytes: about the HTTP headers of one Put Page and its answer
PRIOR_GAP = 4096  # bytes: joined before anything is measured
MAX_GAP = 4 << 20  # a gap inside one 4 MiB Put Page is smaller than this
MIN_SAMPLES = 16.0  # weight of measurements needed before fitting
MIN_SPREAD = 0.25  # sizes must spread this much (standard deviation / mean) to fit a line


@dataclass(frozen=True)
class CostEstimate:
    """The current estimate: fixed seconds per put, bytes per second per put, the gap to join."""

    request_seconds: float  # 0.0 while not measured
    bytes_per_second: float  # 0.0 while not measured; math.inf if bytes cost nothing visible
    join_gap: int  # the largest zero gap worth joining, FLOOR_GAP .. MAX_GAP
    samples: int  # puts measured
    measured: bool  # False: the prior (nothing, or too little spread in sizes, measured yet)


def break_even(request_seconds: float, bytes_per_second: float) -> int:
    """The zero gap whose sending takes as long as one request: fixed time x throughput,
    kept within FLOOR_GAP .. MAX_GAP."""
    gap = request_seconds * bytes_per_second
    if math.isnan(gap):
        return FLOOR_GAP
    return int(min(max(gap, FLOOR_GAP), MAX_GAP))


class PutCosts:
    """A running least-squares fit of put time against put size; thread-safe."""

    def __init__(self, *, memory: int = 256) -> None:
        self._lock = threading.Lock()
        self._keep = 1.0 - 1.0 / memory
        self._w = self._ww = self._x = self._y = self._xx = self._xy = self._yy = 0.0
        self._samples = 0
        self._known: CostEstimate | None = None

    @classmethod
    def known(cls, request_seconds: float, bytes_per_second: float) -> PutCosts:
        """Costs given, not learnt (a target measured before; tests): measurements are ignored."""
        costs = cls()
        costs._known = CostEstimate(
            request_seconds=request_seconds,
            bytes_per_second=bytes_per_second,
            join_gap=break_even(request_seconds, bytes_per_second),
            samples=0,
            measured=True,
        )
        return costs

    def observe(self, size: int, seconds: float) -> None:
        """Record one put of `size` bytes that took `seconds`."""
        keep = self._keep
        with self._lock:
            self._w = self._w * keep + 1.0
            self._ww = self._ww * keep * keep + 1.0
            self._x = self._x * keep + size
            self._y = self._y * keep + seconds
            self._xx = self._xx * keep + float(size) * size
            self._xy = self._xy * keep + size * seconds
            self._yy = self._yy * keep + seconds * seconds
            self._samples += 1

    def estimate(self) -> CostEstimate:
        """The fit so far; the prior while the measurements cannot separate the two costs, or
        the fixed cost is within their noise (less than twice its standard error)."""
        if self._known is not None:
            return self._known
        with self._lock:
            w, ww, x, y = self._w, self._ww, self._x, self._y
            xx, xy, yy, samples = self._xx, self._xy, self._yy, self._samples
        if w < MIN_SAMPLES:
            return CostEstimate(0.0, 0.0, PRIOR_GAP, samples, measured=False)
        mean_x, mean_y = x / w, y / w
        var_x = xx / w - mean_x * mean_x
        if var_x <= (MIN_SPREAD * mean_x) ** 2:
            return CostEstimate(0.0, 0.0, PRIOR_GAP, samples, measured=False)
        slope = (xy / w - mean_x * mean_y) / var_x  # seconds per byte
        fixed = mean_y - slope * mean_x
        residual = max(yy / w - mean_y * mean_y - slope * slope * var_x, 0.0)
        count = w * w / ww  # effective number of measurements
        slope_error = math.sqrt(residual / (count * var_x))
        fixed_error = math.sqrt(residual / count * (1.0 + mean_x * mean_x / var_x))
        rate = 1.0 / slope if slope > 0 else math.inf
        if fixed <= 2 * fixed_error:
            return CostEstimate(max(fixed, 0.0), rate, PRIOR_GAP, samples, measured=False)
        slowest = slope + 2 * slope_error  # the bytes' cost, at most (within the noise)
        gap = break_even(fixed, 1.0 / slowest) if slowest > 0 else MAX_GAP
        return CostEstimate(fixed, rate, gap, samples, measured=True)


__all__ = ["FLOOR_GAP", "MAX_GAP", "PRIOR_GAP", "CostEstimate", "PutCosts", "break_even"]
