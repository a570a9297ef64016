"""What the preflight checks read from Azure, each read once per run (thread-safe memo),
and the spec questions several checks ask (which storage accounts, Spot, build VM)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from batchimage.azure.batch_quota import PoolUse, pools_in_use
from batchimage.azure.blobs import StorageAccount, find_account
from batchimage.azure.capacity import compute_usage, vm_sizes
from batchimage.azure.marketplace import MarketplaceImage, resolve_marketplace
from batchimage.azure.node_agents import (
    BatchAccount,
    SupportedImage,
    account_of,
    batch_account_raw,
    supported_images,
)
from batchimage.steps.gallery import builds_vm

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients
    from batchimage.steps.base import RunContext

T = TypeVar("T")


@dataclass(frozen=True)
class StorageUse:
    """A storage account the spec names, what for, and whether it must be in the spec's region."""

    role: str
    account: str
    group: str | None
    same_region: bool


class Facts:
    """Lazily read, shared facts about the world the spec will run in."""

    def __init__(
        self,
        ctx: RunContext,
        spec: Any,
        pinned_version: str | None = None,
        planning: bool = False,
    ) -> None:
        self.ctx = ctx
        self.spec = spec
        self.pinned_version = pinned_version
        self.planning = planning  # for `plan`, whose identity need not be the one applying
        self._memo: dict[str, tuple[bool, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @property
    def clients(self) -> AzureClients:
        clients: AzureClients = self.ctx.clients
        return clients

    def memo(self, key: str, fn: Callable[[], T]) -> T:
        """`fn()` computed once per key (its exception re-raised to every caller); under a
        read snapshot (`plan`), once for every spec that reads the same snapshot, so a
        key names the read whatever the spec."""
        snapshot = self.clients.snapshot
        if snapshot is not None:
            read = fn
            fn = lambda: snapshot.remember(key, read)  # noqa: E731
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = (True, fn())
                except Exception as exc:
                    self._memo[key] = (False, exc)
            good, value = self._memo[key]
        if not good:
            raise value
        return value

    def storage(self, name: str, group: str | None) -> StorageAccount | None:
        return self.memo(f"storage:{group}/{name}", lambda: find_account(self.clients, name, group))

    def batch_raw(self, group: str, name: str) -> Any:
        """The Batch account's SDK model (None: no such account), read once."""
        return self.memo(
            f"batch-raw:{group}/{name}", lambda: batch_account_raw(self.clients, group, name)
        )

    def batch(self, group: str, name: str) -> BatchAccount | None:
        return self.memo(
            f"batch:{group}/{name}", lambda: account_of(self.batch_raw(group, name), group)
        )

    def marketplace(self) -> MarketplaceImage:
        mp = self.spec.image.base.marketplace
        return self.memo(
            f"marketplace:{self.spec.location}:{mp!r}:{self.pinned_version}",
            lambda: resolve_marketplace(
                self.clients, self.spec.location, mp, pinned=self.pinned_version
            ),
        )

    def supported(self, endpoint: str) -> list[SupportedImage]:
        return self.memo(f"supported:{endpoint}", lambda: supported_images(self.clients, endpoint))

    def skus(self, location: str | None = None) -> dict[str, Any]:
        """VM sizes offered in `location` (default: the spec's region), by lower-case name."""
        where = location or self.spec.location

        return self.memo(f"skus:{where}", lambda: vm_sizes(self.clients, where))

    def usages(self, location: str | None = None) -> dict[str, tuple[int, int, str]]:
        """Compute usage in `location` (default: the spec's region): name -> (current,
        limit, display name)."""
        where = location or self.spec.location

        return self.memo(f"usages:{where}", lambda: compute_usage(self.clients, where))

    def pools_used(self, account: BatchAccount) -> list[PoolUse]:
        """The pools of a Batch account and the nodes each holds (data plane)."""
        return self.memo(
            f"pools:{account.endpoint}", lambda: pools_in_use(self.clients.batch(account.endpoint))
        )


def storage_uses(spec: Any) -> list[StorageUse]:
    """Every storage account the spec names, with its role."""
    image = spec.image
    uses: list[StorageUse] = []
    disk = image.build.os_disk
    if disk.type == "unmanaged" and builds_vm(spec) and disk.storage_account:
        uses.append(
            StorageUse("unmanaged OS disk", disk.storage_account, spec.resource_group, True)
        )
    vhd_file = image.base.vhd_file
    if vhd_file is not None:
        uses.append(
            StorageUse("VHD upload", vhd_file.storage_account, vhd_file.resource_group, True)
        )
    export = image.capture.vhd_export
    if export is not None:
        uses.append(StorageUse("VHD export", export.storage_account, export.resource_group, False))
    return uses


def wants_spot(pool: Any) -> bool:
    """Whether a pool asks for Spot (low-priority) nodes."""
    if pool.spot_nodes:
        return True
    formula = pool.autoscale.formula if pool.autoscale is not None else ""
    return "lowpriority" in formula.replace("_", "").lower()


def pool_accounts(spec: Any) -> dict[tuple[str, str], list[Any]]:
    """The pools of each Batch account (resource group, name)."""
    out: dict[tuple[str, str], list[Any]] = {}
    for pool in spec.pools:
        ref = pool.batch_account
        out.setdefault((ref.resource_group or spec.resource_group, ref.name), []).append(pool)
    return out
