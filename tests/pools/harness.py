"""A harness for pool tests: the image pipeline harness, running every stage (image and
pools) through the real engine, plus reads of the Batch account the pools live in.

    spec = pools.spec("quickstart.yaml", edit)          # unique pipeline, gallery, pool ids
    pools.edit(spec, edit)                              # change the spec file in place
    pools.apply(spec); pools.plan(spec); pools.destroy(spec)
    pools.batch.get_pool("...")                          # the seeded account's BatchClient
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from azure.batch import BatchClient

from batchimage.engine.coordinator import Engine
from batchimage.engine.result import Change
from batchimage.state import Journal
from tests.pipeline.harness import Harness

_pools = itertools.count(1)


class PoolHarness(Harness):
    """Specs with pools, applied end to end (image and pool stages)."""

    @property
    def batch(self) -> BatchClient:
        return self.clients.batch(self.conn.batch_endpoint(self.conn.batch_account))

    def spec(
        self,
        example: str,
        edit: Callable[[dict[str, Any]], None] | None = None,
        *,
        name: str | None = None,
    ) -> Path:
        """The example with unique names (pool ids get a unique prefix); `name` fixes the
        pipeline name, so specs with the same name share one image."""
        prefix = f"p{next(_pools)}"

        def unique_pools(data: dict[str, Any]) -> None:
            for pool in data.get("pools", []):
                pool["id"] = f"{prefix}-{pool['id']}"[:40]
            if edit is not None:
                edit(data)

        return super().spec(example, unique_pools, name=name)

    def edit(self, path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
        """Edit the spec file at `path` in place (its names stay)."""
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def _engine(
        self, path: Path, journal: Journal, *, all_stages: bool = True, refresh: bool = False
    ) -> Engine:
        """Every stage (the image pipeline harness runs only the image stages)."""
        return super()._engine(path, journal, all_stages=True, refresh=refresh)

    def pool_ids(self, prefix: str) -> list[str]:
        """Ids of the live pools whose id starts with `prefix` (not being deleted)."""
        pools = self.batch.list_pools(filter=f"startswith(id,'{prefix}')")
        return sorted(str(p.id) for p in pools if str(p.state) != "deleting")

    def change(self, changes: list[Change], key: str) -> Change:
        return next(c for c in changes if c.key == key)
