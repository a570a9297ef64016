"""What a run comes to: a `Change` per step (what plan or apply decided, and why), the
`RunResult` of an apply or a destroy with its outcome words (`OUTCOMES`), and a run's id."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from batchimage.plan import Action

# The actions that change something in Azure.
CHANGES: frozenset[str] = frozenset({"create", "update", "replace", "delete"})

# What a step's run came to, in the summary's order; the first four are always counted.
OUTCOMES = (
    "created",
    "changed",
    "deleted",
    "unchanged",
    "read",
    "skipped",
    "failed",
    "interrupted",
    "not run",
)


@dataclass(frozen=True)
class Change:
    """What plan/apply decided for one step, and why."""

    key: str
    kind: str
    action: Action
    reason: str
    description: str = ""

    def to_json(self) -> dict[str, str]:
        """The change as a JSON-able dict."""
        return asdict(self)


@dataclass
class RunResult:
    """What a run did: one Change per step, in plan order (action in past tense).

    `outcomes` says per step key what its run came to, in the words the summary counts:
    created, changed, deleted, unchanged, read, skipped, failed, interrupted, not run.
    """

    run_id: str
    changes: list[Change] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
    kept: list[str] = field(default_factory=list)  # destroy: "<step>: <what> kept: <why>"

    def count(self, action: str) -> int:
        """How many steps ended with `action` (e.g. "created", "no-op")."""
        return sum(1 for c in self.changes if c.action == action)

    def counts(self) -> dict[str, int]:
        """Steps per outcome, in the summary's order (only the outcomes some step had)."""
        found = list(self.outcomes.values())
        return {name: found.count(name) for name in OUTCOMES if name in found}

    def summary(self, *, always: Sequence[str] = OUTCOMES[:4]) -> str:
        """e.g. "7 created, 3 changed, 1 deleted, 4 unchanged, 2 read, 6 skipped"."""
        counts = dict.fromkeys(always, 0) | self.counts()
        ordered = [name for name in OUTCOMES if name in counts]
        return ", ".join(f"{counts[name]} {name}" for name in ordered) or "nothing to do"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus 6 random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
