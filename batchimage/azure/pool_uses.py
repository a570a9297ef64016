"""Which image each pool of some Batch accounts names: what retention must not delete.

uses = pool_uses(clients, accounts)      # PoolUse per pool, those being deleted included
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from batchimage.azure.batch_pools import batch_call

POOL_FIELDS = ["id", "state", "virtualMachineConfiguration"]


@dataclass(frozen=True)
class PoolUse:
    """One pool and the image it names (`virtualMachineImageId`, "" for none)."""

    account: str
    pool_id: str
    image_id: str
    state: str = "active"

    def names(self, resource_id: str) -> bool:
        """Whether the pool names `resource_id` (compared as Azure compares ids)."""
        return self.image_id.rstrip("/").lower() == resource_id.rstrip("/").lower()

    def __str__(self) -> str:
        deleting = " (being deleted)" if self.state == "deleting" else ""
        return f"pool {self.pool_id} of Batch account {self.account}{deleting}"


def pool_uses(clients: Any, accounts: Iterable[Any]) -> list[PoolUse]:
    """Every pool of each Batch account (`node_agents.BatchAccount`), those being deleted
    included (their nodes may still run the image)."""
    out: list[PoolUse] = []
    for account in accounts:
        client = clients.batch(account.endpoint)
        with batch_call(f"list the pools of Batch account {account.name}"):
            pools = list(client.list_pools(select=POOL_FIELDS))
        for pool in pools:
            vmc = getattr(pool, "virtual_machine_configuration", None)
            ref = getattr(vmc, "image_reference", None)
            image = str(getattr(ref, "virtual_machine_image_id", None) or "")
            state = str(getattr(pool.state, "value", pool.state) or "active").lower()
            out.append(PoolUse(account.name, str(pool.id), image, state))
    return out
