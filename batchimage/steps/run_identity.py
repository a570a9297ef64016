"""Which run a context belongs to: its spec, pipeline name, run id, whether it resolves the
base afresh, how long one delete may take, and the state it started from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchimage.state import State


@dataclass(kw_only=True)
class RunIdentity:
    """The run's identity, the same for every step's view of it."""

    spec: Any  # the commands' (steps read their typed inputs, never the spec)
    pipeline: str
    run_id: str
    state: State | None = None
    refresh_base: bool = False  # resolve a Marketplace 'latest' afresh (`--refresh-base`)
    # the spec's `timeouts.delete_s`: for destroy, which works from the state alone (None:
    # the default)
    delete_timeout_s: float | None = None
