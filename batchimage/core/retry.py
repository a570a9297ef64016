"""Step-level retry of transient Azure failures: the policy (from `spec.retry`) and the one
loop that applies it, for the engine's step calls and for commands that call Azure alone
(`batchimage preflight`).

    policy = RetryPolicy.from_spec(spec.retry)
    value = retry_transient(fn, policy, clock=clock, stop=stop_event, deadline=t,
                            on_retry=lambda error, attempt, delay: ...,
                            classify=AZURE.classify)

Only `TransientAzureError` is retried (`batchimage.azure.errors` decides what is transient:
429, 5xx, dropped connections, timeouts, failed operations and conflicts that clear);
an exception that escapes `fn` is mapped by `classify` first (`batchimage.core.failures`: the
Azure one maps the SDK's exceptions, and this module knows no cloud). The wait is the error's
Retry-After when Azure sent one, else exponential backoff with jitter; the loop stops after
`max_attempts` tries or before a wait that would pass `deadline`, and a set `stop` event
ends a wait at once (StepInterrupted).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from batchimage.core.errors import BatchImageError, TransientAzureError
from batchimage.core.waiting import Clock, StepInterrupted

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Step-level retry of transient failures (from `spec.retry`)."""

    max_attempts: int = 6
    initial_delay_s: float = 2.0
    max_delay_s: float = 60.0
    step_deadline_s: float = 3600.0

    @classmethod
    def from_spec(cls, retry: Any) -> RetryPolicy:
        """Read the knobs from a spec's `retry` section (missing ones keep the defaults)."""
        if retry is None:
            return cls()
        names = ("max_attempts", "initial_delay_s", "max_delay_s", "step_deadline_s")
        values = {n: getattr(retry, n) for n in names if getattr(retry, n, None) is not None}
        return cls(**values)


def retry_transient(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    clock: Clock,
    stop: threading.Event,
    deadline: float,
    on_retry: Callable[[BaseException | None, int, float], None],
    classify: Callable[[BaseException], BatchImageError | None],
) -> T:
    """`fn()`, tried again after each transient failure as the module docstring says;
    `on_retry(error, attempt, delay_s)` is told before each wait; an exception `fn` lets
    escape is raised as `classify` maps it (as it is when that says None)."""

    def wait(rs: tenacity.RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return float(after)
        base = min(policy.max_delay_s, policy.initial_delay_s * 2 ** (rs.attempt_number - 1))
        return base / 2 + random.uniform(0, base / 2)

    def give_up(rs: tenacity.RetryCallState) -> bool:
        if rs.attempt_number >= policy.max_attempts:
            return True
        return clock.monotonic() + (rs.upcoming_sleep or 0) > deadline

    def before_sleep(rs: tenacity.RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        on_retry(exc, rs.attempt_number, rs.upcoming_sleep or 0)

    def attempt() -> T:
        try:
            return fn()
        except (BatchImageError, StepInterrupted):
            raise
        except Exception as exc:
            ours = classify(exc)
            if ours is None:
                raise
            raise ours from exc

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransientAzureError),
        stop=give_up,
        wait=wait,
        sleep=lambda seconds: clock.sleep(seconds, stop),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(attempt)
