"""Fault injection: answer a matching request with an error status (429 + Retry-After,
500, 503...), drop its connection, delay it, or make the operation it starts end Failed.

A rule (from the config file's `faults` list or `PUT /_sandbox/faults`) is a mapping:

    {"kind": "status" | "drop" | "delay" | "lro_fail",
     "method": "PUT",                    # regex on the method (default any)
     "path": "/virtualMachines/",        # regex searched in the path (default any)
     "nth": 2, "times": 1,               # fire on the 2nd matching request (once), or
     "rate": 0.1,                        # fire on 10% of matches (seeded RNG)
     "status": 429, "code": "TooManyRequests", "message": "...", "retry_after": 1,
     "delay": 0.5}                       # seconds (real) for kind "delay"

Without `nth` or `rate` a rule fires on every match (up to `times`). Only ARM and Batch
requests are subject to faults; the token endpoint and admin endpoint never are.

`code` is free: a rule may inject any Azure code (defaults: 429, 500 and 503 have Azure's,
`lro_fail` InternalOperationError; another status needs one). Under the register guard
(`batchimage.sandbox.register`, on in the test suite) only registered codes are taken.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchimage.sandbox import register
from batchimage.sandbox.errors import SandboxError

if TYPE_CHECKING:
    from batchimage.sandbox.context import Call, World

KINDS = ("status", "drop", "delay", "lro_fail")
DEFAULT_CODES = {
    429: (
        "TooManyRequests",
        "The request is being throttled as the limit has been reached "
        "for operation type - Write_Subscription. Please retry after the time in the "
        "Retry-After header.",
    ),
    500: ("InternalServerError", "Encountered internal server error. Please try again."),
    503: ("ServiceUnavailable", "The service is unavailable right now. Please try again later."),
}
LRO_FAIL_CODE = ("InternalOperationError", "An internal error occurred in the operation.")


@dataclass
class FaultRule:
    """One fault rule and how often it has matched and fired."""

    kind: str
    method: str = ".*"
    path: str = ".*"
    nth: int | None = None
    rate: float | None = None
    times: int | None = None
    status: int = 500
    code: str = ""
    message: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    seen: int = 0
    fired: int = 0
    _method_re: re.Pattern[str] = field(init=False, repr=False)
    _path_re: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SandboxError(f"fault kind must be one of {KINDS}, got {self.kind!r}")
        self._method_re = re.compile(self.method, re.IGNORECASE)
        self._path_re = re.compile(self.path, re.IGNORECASE)
        default_code, default_message = DEFAULT_CODES.get(self.status, ("", "Injected fault."))
        if self.kind == "lro_fail":
            default_code, default_message = LRO_FAIL_CODE
        self.code = self.code or default_code
        self.message = self.message or default_message
        if self.kind == "status" and not self.code:
            raise SandboxError(
                f"a status {self.status} fault needs a code (Azure's defaults are known for "
                f"{sorted(DEFAULT_CODES)} only)"
            )
        if self.code and register.unregistered(self.code):
            raise SandboxError(f"fault rule: {register.refusal(self.code)}")
        if self.times is None and self.nth is not None:
            self.times = 1

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {
            "kind",
            "method",
            "path",
            "nth",
            "rate",
            "times",
            "status",
            "code",
            "message",
            "retry_after",
            "delay",
        }
        unknown = set(data) - allowed
        if unknown:
            raise SandboxError(
                f"unknown fault rule field(s) {sorted(unknown)}; known: {sorted(allowed)}"
            )
        try:
            return cls(**data)
        except (TypeError, re.error) as exc:
            raise SandboxError(f"invalid fault rule {data}: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "nth": self.nth,
            "rate": self.rate,
            "times": self.times,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "seen": self.seen,
            "fired": self.fired,
        }

    def matches(self, method: str, path: str) -> bool:
        return bool(self._method_re.fullmatch(method) and self._path_re.search(path))

    def decide(self, rng: random.Random) -> bool:
        """Count one matching request and say whether the fault fires on it."""
        self.seen += 1
        if self.times is not None and self.fired >= self.times:
            return False
        if self.nth is not None:
            fire = self.seen >= self.nth
        elif self.rate is not None:
            fire = rng.random() < self.rate
        else:
            fire = True
        if fire:
            self.fired += 1
        return fire


class FaultInjector:
    """The active fault rules and the seeded random source they draw from."""

    def __init__(self, rules: list[dict[str, Any]], seed: int = 0) -> None:
        self.lock = threading.Lock()
        self.seed = seed
        self.rng = random.Random(seed)
        self.rules = [FaultRule.from_json(r) for r in rules]

    def replace(self, rules: list[dict[str, Any]], seed: int | None = None) -> None:
        """Install new rules (counters restart; the RNG is re-seeded)."""
        parsed = [FaultRule.from_json(r) for r in rules]
        with self.lock:
            self.rules = parsed
            if seed is not None:
                self.seed = seed
            self.rng = random.Random(self.seed)

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first request-level rule (status/drop/delay) that fires for this request."""
        with self.lock:
            for rule in self.rules:
                if rule.kind != "lro_fail" and rule.matches(method, path) and rule.decide(self.rng):
                    return rule
        return None

    def lro_failure(self, call: Call) -> dict[str, Any] | None:
        """An error `{code, message, status}` if a lro_fail rule fires for this call."""
        with self.lock:
            for rule in self.rules:
                if (
                    rule.kind == "lro_fail"
                    and rule.matches(call.method, call.path)
                    and rule.decide(self.rng)
                ):
                    return {"code": rule.code, "message": rule.message, "status": rule.status}
        return None

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {"seed": self.seed, "rules": [r.to_json() for r in self.rules]}


def injector(world: World) -> FaultInjector:
    """The world's fault injector (an empty one if none was installed)."""
    if world.faults is None:
        world.faults = FaultInjector([], world.config.seed)
    return world.faults
