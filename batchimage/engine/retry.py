"""Step-level retry: a step's call (check, apply, destroy, leftovers) run through
`batchimage.core.retry`'s loop within the step's deadline, each retry told as a `step_retrying`
event. (`batchimage.core.retry` itself stays beside the steps: cleanup's deletes and the
`preflight` command use it too, and the steps sit below the engine.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from batchimage.core.events import Event
from batchimage.core.failures import Failures
from batchimage.core.redact import redact
from batchimage.core.retry import RetryPolicy, retry_transient
from batchimage.engine.graph import Node
from batchimage.steps.base import RunContext

T = TypeVar("T")


def call(
    node: Node,
    fn: Callable[[], T],
    *,
    ctx: RunContext,
    policy: RetryPolicy,
    failures: Failures,
    counts: bool = False,
) -> T:
    """Run `fn` with step-level retry of transient failures (see RetryPolicy) until
    `node.deadline`; `counts`: each try is an attempt of the step's apply."""

    def attempt() -> T:
        if counts:
            node.attempts += 1
        return fn()

    def retrying(exc: BaseException | None, number: int, delay: float) -> None:
        ctx.events.emit(
            Event(
                "step_retrying",
                step=node.step.key,
                message=redact(str(exc)),
                data={
                    "attempt": number,
                    "max_attempts": policy.max_attempts,
                    "delay_s": round(delay, 3),
                    "code": getattr(exc, "code", None),
                },
            )
        )

    return retry_transient(
        attempt,
        policy,
        clock=ctx.clock,
        stop=ctx.stop,
        deadline=node.deadline,
        on_retry=retrying,
        classify=failures.classify,
    )
