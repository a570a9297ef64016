"""One request budget against Azure Resource Manager per cloud and subscription, shared by
every SDK client of the process (so by every spec of a command that runs many).

ARM throttles per subscription and principal with token buckets (reads, writes, deletes;
docs/azure-behaviours.md, "Request limits"), and says so on its answers:
`x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` (and `-global-` ones across
principals) count what is left; a 429 carries `Retry-After`. A `Budget` reads both:

- after a 429 with Retry-After, no request of the process leaves before that time (the
  one that got it is retried then by the SDK; the others wait instead of being refused
  too, and spending their own retries);
- while a remaining count is low (`LOW`, a second of refill or less), requests of that
  kind leave no faster than the bucket refills (`REFILL` per second).

    budget = budget_for(arm_endpoint, subscription_id)
    client = ComputeManagementClient(..., raw_request_hook=budget.before,
                                     raw_response_hook=budget.after)

Only ARM requests are counted (the clients of `AzureClients` that talk to ARM get the
hooks); the Batch data plane and storage throttle otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Refill per second of ARM's subscription buckets (reads 250 / 25 per s; writes and deletes
# 200 / 10 per s); a remaining count at or under a second of refill paces that kind.
REFILL = {"reads": 25.0, "writes": 10.0, "deletes": 10.0}
LOW = {kind: int(rate) for kind, rate in REFILL.items()}
HEADER = "x-ms-ratelimit-remaining-subscription-"


def kind_of(method: str) -> str:
    """The bucket an HTTP method draws from: reads, writes or deletes."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


def remaining(headers: Mapping[str, str], kind: str) -> int | None:
    """The fewest requests of `kind` ARM says are left (subscription or global), if said."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    found = []
    for name in (f"{HEADER}{kind}", f"{HEADER}global-{kind}"):
        try:
            found.append(int(lowered[name]))
        except (KeyError, ValueError):
            continue
    return min(found) if found else None


@dataclass
class Budget:
    """The shared budget of one ARM endpoint and subscription; see the module docstring."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    not_before: float = 0.0  # on `clock`: no request before (a Retry-After)
    left: dict[str, int] = field(default_factory=dict)  # the last remaining count per kind
    slot: dict[str, float] = field(default_factory=dict)  # the next paced start per kind
    throttled: int = 0  # 429s seen
    waited_s: float = 0.0  # time requests spent waiting here
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def delay(self, method: str) -> float:
        """Seconds a request of `method` waits before it leaves (and takes its slot)."""
        kind = kind_of(method)
        with self._lock:
            now = self.clock()
            start = max(now, self.not_before)
            left = self.left.get(kind)
            if left is not None and left <= LOW[kind]:
                start = max(start, self.slot.get(kind, 0.0))
                self.slot[kind] = start + 1.0 / REFILL[kind]
            return start - now

    def before(self, request: Any) -> None:
        """`raw_request_hook`: wait until the request may leave."""
        wait = self.delay(request.http_request.method)
        if wait > 0:
            with self._lock:
                self.waited_s += wait
            self.sleep(wait)

    def after(self, response: Any) -> None:
        """`raw_response_hook`: note a 429's Retry-After and the remaining counts."""
        http = response.http_response
        method = response.http_request.method
        self.saw(method, http.status_code, http.headers)

    def saw(self, method: str, status: int, headers: Mapping[str, str]) -> None:
        """Take in one answer of ARM: its status and headers."""
        from batchimage.azure.errors import retry_after_seconds

        kind = kind_of(method)
        count = remaining(headers, kind)
        pause = retry_after_seconds({str(k).lower(): str(v) for k, v in headers.items()})
        with self._lock:
            if count is not None:
                self.left[kind] = count
            if status == 429:
                self.throttled += 1
                if pause:
                    until = self.clock() + pause
                    if until > self.not_before:
                        log.info("ARM throttled: every request waits %.1f s", pause)
                    self.not_before = max(self.not_before, until)


_budgets: dict[tuple[str, str], Budget] = {}
_budgets_lock = threading.Lock()


def budget_for(arm_endpoint: str, subscription: str) -> Budget:
    """The process's budget for `subscription` on the cloud at `arm_endpoint`."""
    key = (arm_endpoint.rstrip("/").lower(), subscription.lower())
    with _budgets_lock:
        return _budgets.setdefault(key, Budget())


def hooks(budget: Budget, extra: Mapping[str, Any]) -> dict[str, Any]:
    """`raw_request_hook` and `raw_response_hook` for an ARM client: the budget's, then
    the caller's own (in `extra`, e.g. a run's `CallGate`)."""
    request_hook = extra.get("raw_request_hook")
    response_hook = extra.get("raw_response_hook")

    def on_request(request: Any) -> None:
        budget.before(request)
        if request_hook is not None:
            request_hook(request)

    def on_response(response: Any) -> None:
        budget.after(response)
        if response_hook is not None:
            response_hook(response)

    return {"raw_request_hook": on_request, "raw_response_hook": on_response}
