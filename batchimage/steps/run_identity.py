"""Which run a context belongs to: its pipeline name, run id, whether it resolves the base
afresh, how long one delete may take, and the state it started from (never the spec: steps
read their typed inputs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchimage.state import State


@dataclass(kw_only=True)
class RunIdentity:
    """The run's identity, the same for every step's view of it."""

    pipeline: str
    run_id: str
    state: State | None = None
    refresh_base: bool = False  # resolve a Marketplace 'latest' afresh (`--refresh-base`)
    # the spec's `timeouts.delete_s`: for destroy, which works from the state alone (None:
    # the default)
    delete_timeout_s: float | None = None
