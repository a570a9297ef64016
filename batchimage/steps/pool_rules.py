"""The pool rules, over plain data: where a live pool differs from the spec
(`azure/pool_config.py` reads both into a `PoolConfig`), whether that takes a new pool or
an update in place, how a difference reads, and the resize timeout a pool gets.

    changes = diff(config_of(live), want)
    [c for c in changes if c.immutable]  # what only a new pool can change

Updatable in place: start task, metadata, sizing (fixed counts or autoscale formula and
interval). Everything else (VM size, image, node agent, security profile, display name,
task slots, network, mounts) can change only on an empty pool, so a difference there
replaces the pool (per the spec's rollout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from batchimage.azure.pool_config import PoolConfig

IMMUTABLE = (
    "vm_size",
    "image_id",
    "node_agent",
    "security",
    "display_name",
    "task_slots",
    "network",
    "mounts",
)
LABELS = {
    "vm_size": "VM size",
    "image_id": "image",
    "node_agent": "node agent SKU",
    "security": "security type",
    "display_name": "display name",
    "task_slots": "task slots per node",
    "network": "network",
    "mounts": "mounts",
    "start_task": "start task",
    "metadata": "metadata",
    "autoscale": "autoscale",
    "dedicated": "target dedicated nodes",
    "spot": "target Spot nodes",
}
NODES_PER_TIMEOUT_STEP = 1000
TIMEOUT_STEP_S = 900


def immutable(config: PoolConfig) -> tuple[Any, ...]:
    """The part of `config` that only a new pool can change."""
    return tuple(getattr(config, name) for name in IMMUTABLE)


@dataclass(frozen=True)
class Difference:
    """One field where the live pool differs from the spec."""

    name: str
    live: Any
    want: Any
    immutable: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "immutable", self.name in IMMUTABLE)

    def __str__(self) -> str:
        label = LABELS.get(self.name, self.name)
        if self.name in ("start_task", "network", "mounts"):
            return f"{label} changed"
        if self.name == "metadata":
            live, want = dict(self.live), dict(self.want)
            keys = sorted(k for k in set(live) | set(want) if live.get(k) != want.get(k))
            return f"{label} changed ({', '.join(keys)})"
        if self.name == "autoscale":
            if self.live is None:
                return "autoscale enabled (was fixed size)"
            if self.want is None:
                return "autoscale disabled (fixed size)"
            if self.live[0] != self.want[0]:
                return "autoscale formula changed"
            return f"autoscale interval {self.live[1]} -> {self.want[1]} min"
        return f"{label} {_show(self.live)} -> {_show(self.want)}"


def _show(value: Any) -> str:
    return "(none)" if value in (None, "") else str(value)


def resize_timeout_s(pool: Any) -> int:
    """The resize timeout: the spec's, but at least 15 minutes per 1,000 nodes."""
    nodes = (pool.dedicated_nodes or 0) + (pool.spot_nodes or 0)
    steps = max(1, math.ceil(nodes / NODES_PER_TIMEOUT_STEP))
    return max(int(pool.resize_timeout_s), steps * TIMEOUT_STEP_S)


def diff(live: PoolConfig, want: PoolConfig) -> list[Difference]:
    """Where `live` differs from `want` (immutable fields first)."""
    names = [*IMMUTABLE, "start_task", "metadata", "autoscale", "dedicated", "spot"]
    out = []
    for name in names:
        a, b = getattr(live, name), getattr(want, name)
        if name in ("dedicated", "spot") and want.autoscale is not None:
            continue  # the formula decides the targets
        if a != b:
            out.append(Difference(name, a, b))
    return out


def describe(changes: list[Difference]) -> str:
    """The differences as one phrase."""
    return ", ".join(str(c) for c in changes)
