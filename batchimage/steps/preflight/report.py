"""Preflight results: one `CheckResult` per check (pass / warn / fail), and the `Report`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from batchimage.core.errors import PreflightError

Status = Literal["pass", "warn", "fail"]
MARKS: dict[str, str] = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: what was checked, how it went, what to do about it."""

    name: str
    status: Status
    message: str

    def line(self) -> str:
        """One line for people: `FAIL storage: ...`."""
        return f"{MARKS[self.status]} {self.name}: {self.message}"

    def to_json(self) -> dict[str, str]:
        """The result for `--format json`: name, status, message."""
        return {"name": self.name, "status": self.status, "message": self.message}


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, "pass", message)


def warn(name: str, message: str) -> CheckResult:
    return CheckResult(name, "warn", message)


def fail(name: str, message: str) -> CheckResult:
    return CheckResult(name, "fail", message)


@dataclass
class Report:
    """Every check's result, in a stable order."""

    results: list[CheckResult] = field(default_factory=list)

    def of(self, status: Status) -> list[CheckResult]:
        """The results with `status`."""
        return [r for r in self.results if r.status == status]

    @property
    def failed(self) -> bool:
        """Whether any check failed."""
        return bool(self.of("fail"))

    def summary(self) -> str:
        """e.g. "12 passed, 1 warning, 2 failed"."""
        n_pass, n_warn, n_fail = (len(self.of(s)) for s in ("pass", "warn", "fail"))
        parts = [f"{n_pass} passed"]
        if n_warn:
            parts.append(f"{n_warn} warning{'s' if n_warn > 1 else ''}")
        if n_fail:
            parts.append(f"{n_fail} failed")
        return ", ".join(parts)

    def render(self) -> str:
        """Every result on its own line, then the summary."""
        return "\n".join([r.line() for r in self.results] + [f"preflight: {self.summary()}"])

    def to_json(self) -> dict[str, object]:
        """The report for `--format json`: failed, summary and every check."""
        return {
            "failed": self.failed,
            "summary": self.summary(),
            "checks": [r.to_json() for r in self.results],
        }

    def raise_if_failed(self) -> None:
        """Raise PreflightError listing the failures (and warnings) when any check failed."""
        if not self.failed:
            return
        lines = [r.line() for r in self.results if r.status != "pass"]
        raise PreflightError(f"{self.summary()}; nothing was created:\n  " + "\n  ".join(lines))
