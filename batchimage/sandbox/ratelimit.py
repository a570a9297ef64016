"""ARM's subscription request limits: token buckets per subscription and principal, and
across principals (global), per kind of request (reads, writes, deletes), as Azure
Resource Manager throttles since 2024 (docs/azure-behaviours.md, "Request limits").

Every ARM request under `/subscriptions/{id}` takes one token from its principal's bucket
and from the subscription's global one. The answer says what is left
(`x-ms-ratelimit-remaining-subscription-<kind>` and `...-global-<kind>`); a request that
finds a bucket empty is answered 429 TooManyRequests with `Retry-After` (the time one
token takes to come back), and is not processed. Buckets refill in simulated time: a
simulated second takes `time_scale` real seconds, so at the default scale they never run
dry in practice; at time_scale 1 they behave as Azure's.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchimage.sandbox.apierrors import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from batchimage.sandbox.context import Call, World

# kind -> (bucket size, refill per second) of one principal; the global bucket is 15 times both
LIMITS = {"reads": (250, 25.0), "writes": (200, 10.0), "deletes": (200, 10.0)}
GLOBAL_FACTOR = 15
OPERATION = {"reads": "Read", "writes": "Write", "deletes": "Delete"}
HEADER = "x-ms-ratelimit-remaining-subscription-"


def kind_of(method: str) -> str:
    """The bucket a request draws from."""
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


@dataclass
class Bucket:
    """Tokens, refilled at `rate` per simulated second up to `size`."""

    size: float
    rate: float
    tokens: float = -1.0
    at: float = 0.0

    def refill(self, scale: float, now: float) -> None:
        if self.tokens < 0 or scale <= 0:
            self.tokens = self.size
        else:
            self.tokens = min(self.size, self.tokens + (now - self.at) / scale * self.rate)
        self.at = now

    def wait_s(self, scale: float) -> float:
        """Real seconds until one token is back."""
        return max(0.0, (1.0 - self.tokens) / self.rate * max(scale, 0.0))


class Limits:
    """The buckets of one sandbox."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now  # real seconds (a test's clock stands still)
        self.lock = threading.Lock()
        self.buckets: dict[tuple[str, str, str], Bucket] = {}

    def take(self, world: World, call: Call) -> dict[str, str]:
        """One token for `call` (an ARM request of a subscription): the remaining-count
        headers for its answer, or ApiError 429 with Retry-After when a bucket is empty."""
        segments = [s for s in call.path.split("/") if s]
        if len(segments) < 2 or segments[0].lower() != "subscriptions":
            return {}
        subscription = segments[1].lower()
        principal = str((call.claims or {}).get("oid", ""))
        kind = kind_of(call.method)
        size, rate = LIMITS[kind]
        scale = world.clock.scale
        with self.lock:
            own = self.buckets.setdefault(
                (subscription, principal, kind), Bucket(float(size), rate)
            )
            every = self.buckets.setdefault(
                (subscription, "", kind), Bucket(float(size * GLOBAL_FACTOR), rate * GLOBAL_FACTOR)
            )
            now = self.now()
            own.refill(scale, now)
            every.refill(scale, now)
            empty = [b for b in (own, every) if b.tokens < 1.0]
            if empty:
                wait = max(b.wait_s(scale) for b in empty)
                raise ApiError(
                    429,
                    "TooManyRequests",
                    "The request is being throttled as the limit has been reached for "
                    f"operation type - {OPERATION[kind]}_Subscription. Please retry after the "
                    "time in the Retry-After header.",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            own.tokens -= 1.0
            every.tokens -= 1.0
            return {
                f"{HEADER}{kind}": str(int(own.tokens)),
                f"{HEADER}global-{kind}": str(int(every.tokens)),
            }

    def reset(self) -> None:
        """Every bucket full again."""
        with self.lock:
            self.buckets.clear()


def limits(world: World) -> Limits:
    """The world's request limits (made on first use)."""
    if world.limits is None:
        world.limits = Limits()
    return world.limits
