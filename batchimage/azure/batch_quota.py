"""Batch account quotas in numbers a person can act on: what the account allows, what its
pools use, what a pool needs, and where to ask for more.

    quotas = account_quotas(clients, "rg", "mybatch")          # None: no such account
    used = pools_in_use(batch_client)                            # the nodes each pool holds
    for q in core_quotas(quotas, sizes, used, ["pool1"], "Standard_D4s_v3", 10, 0):
        q.short, q.text()   # "dedicated core quota for VM family X is 100 vCPUs; ..."

Batch-service accounts: dedicated nodes count against `dedicatedCoreQuota` and, when
`dedicatedCoreQuotaPerVMFamilyEnforced`, against their VM family's quota; Spot /
low-priority nodes against `lowPriorityCoreQuota`. Every account has a pool quota. (In
user-subscription mode core quotas are the subscription's: Compute usage, not here.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from batchimage.azure.arm import text
from batchimage.azure.batch_pools import metadata_of
from batchimage.azure.errors import azure_call
from batchimage.azure.node_agents import batch_account_raw
from batchimage.core.ownership import Marks

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchimage.azure.clients import AzureClients

POOL_FIELDS = [
    "id",
    "allocationState",
    "vmSize",
    "currentDedicatedNodes",
    "currentLowPriorityNodes",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "metadata",
]


@dataclass(frozen=True)
class AccountQuotas:
    """A Batch account's quotas as its GET reports them (None: not reported)."""

    name: str
    group: str
    location: str
    mode: str
    dedicated: int | None
    low_priority: int | None
    families: dict[str, tuple[str, int]]  # lower-case family -> (its spelling, vCPUs)
    family_enforced: bool
    pools: int | None
    active_jobs: int | None

    @property
    def batch_service(self) -> bool:
        return self.mode.lower() != "usersubscription"

    def family(self, name: str) -> tuple[str, int] | None:
        """(spelling, quota) of a VM family the account lists, else None."""
        return self.families.get(name.lower())


def account_quotas(clients: AzureClients, group: str, name: str) -> AccountQuotas | None:
    """The quotas of Batch account `name` in `group` (management API), None if it is missing."""
    raw = batch_account_raw(clients, group, name)
    return None if raw is None else quotas_of(raw, group)


def quotas_of(raw: Any, group: str) -> AccountQuotas:
    """The quotas a Batch account's SDK model (`batch_account_raw`) states."""
    families = {
        text(q.name).lower(): (text(q.name), int(q.core_quota or 0))
        for q in (raw.dedicated_core_quota_per_vm_family or [])
    }
    return AccountQuotas(
        name=str(raw.name),
        group=group,
        location=(raw.location or "").replace(" ", "").lower(),
        mode=text(raw.pool_allocation_mode or "BatchService"),
        dedicated=raw.dedicated_core_quota,
        low_priority=raw.low_priority_core_quota,
        families=families,
        family_enforced=bool(raw.dedicated_core_quota_per_vm_family_enforced),
        pools=raw.pool_quota,
        active_jobs=raw.active_job_and_job_schedule_quota,
    )


@dataclass(frozen=True)
class PoolUse:
    """The nodes one pool holds: current ones, or its targets while it is resizing (the
    nodes on their way count)."""

    id: str
    vm_size: str
    dedicated: int
    low_priority: int
    owner: tuple[str, str] | None = None  # (pipeline, spec pool id) that made it, if batchimage

    def stands_for(self, pool_id: str, pipeline: str) -> bool:
        """Whether this is spec pool `pool_id` of `pipeline` (its id, or a generation the
        pipeline made for it), as the pool step finds its pools."""
        return self.id.lower() == pool_id.lower() or self.owner == (pipeline, pool_id)


def _use(pool: Any) -> PoolUse:
    dedicated = int(pool.current_dedicated_nodes or 0)
    low = int(pool.current_low_priority_nodes or 0)
    if text(pool.allocation_state or "").lower() == "resizing":
        dedicated = max(dedicated, int(pool.target_dedicated_nodes or 0))
        low = max(low, int(pool.target_low_priority_nodes or 0))
    meta = metadata_of(pool)
    owner = None
    if Marks.Pool.PIPELINE in meta:
        owner = (meta[Marks.Pool.PIPELINE], meta.get(Marks.Pool.POOL, ""))
    return PoolUse(str(pool.id), str(pool.vm_size or ""), dedicated, low, owner)


def pools_in_use(client: BatchClient) -> list[PoolUse]:
    """Every pool of the account behind `client`, with the nodes it holds."""
    with azure_call("list the Batch account's pools"):
        return [_use(p) for p in client.list_pools(select=POOL_FIELDS)]


@dataclass(frozen=True)
class VmSize:
    """A VM size's vCPUs, the quota family it counts against, and the Hyper-V generations
    it boots (empty: not reported)."""

    cores: int
    family: str
    generations: tuple[str, ...] = ()


def sizes_from_skus(skus: Iterable[Any]) -> dict[str, VmSize]:
    """VM sizes by lower-case name, from resource SKUs (`compute.resource_skus.list`)."""
    out = {}
    for sku in skus:
        if text(getattr(sku, "resource_type", "virtualMachines")).lower() != "virtualmachines":
            continue
        caps = {text(c.name).lower(): text(c.value) for c in (sku.capabilities or [])}
        cores = caps.get("vcpus", "")
        generations = tuple(g.strip().upper() for g in caps.get("hypervgenerations", "").split(","))
        if cores.isdigit():
            out[text(sku.name).lower()] = VmSize(
                int(cores), text(sku.family or ""), tuple(g for g in generations if g)
            )
    return out


def read_sizes(clients: AzureClients, location: str) -> dict[str, VmSize]:
    """The VM sizes offered in `location` (vCPUs and family)."""
    with azure_call(f"list VM sizes (resource SKUs) in {location}"):
        return sizes_from_skus(
            clients.compute.resource_skus.list(filter=f"location eq '{location}'")
        )


QuotaKind = Literal["dedicated", "family", "spot"]


@dataclass(frozen=True)
class CoreQuota:
    """One vCPU quota as a pool meets it: its size, what the other pools hold, what the
    pool needs in all (its target nodes x vCPUs)."""

    kind: QuotaKind
    label: str  # "dedicated core quota", "dedicated core quota for VM family X", ...
    limit: int
    in_use: int
    needed: int
    holders: tuple[str, ...] = field(default_factory=tuple)

    @property
    def free(self) -> int:
        return max(self.limit - self.in_use, 0)

    @property
    def short(self) -> bool:
        return self.needed > self.free

    def text(self) -> str:
        """'dedicated core quota ... is 100 vCPUs; 96 in use by other pools (a: 24 x ...);
        8 needed, 4 free'."""
        used = f"{self.in_use} in use by other pools" if self.in_use else "none in use"
        if self.holders:
            used += f" ({', '.join(self.holders)})"
        return f"{self.label} is {self.limit} vCPUs; {used}; {self.needed} needed, {self.free} free"


def _holders(items: list[tuple[str, int, int, str]]) -> tuple[str, ...]:
    """The biggest users first, three at the most: 'pool-a: 24 x standard_d4s_v3'."""
    items.sort(key=lambda it: -it[2])
    shown = [f"{pid}: {n} x {size}" for pid, n, _, size in items[:3]]
    if len(items) > 3:
        shown.append(f"{len(items) - 3} more")
    return tuple(shown)


def core_quotas(
    quotas: AccountQuotas,
    sizes: dict[str, VmSize],
    used: list[PoolUse],
    pool_ids: Iterable[str],
    vm_size: str,
    dedicated: int,
    spot: int,
) -> list[CoreQuota]:
    """The Batch-service vCPU quotas a pool of `dedicated` + `spot` nodes of `vm_size` meets,
    next to the account's other pools (`pool_ids`: the pool's own ids, whose nodes are not
    "other"). Empty for user-subscription accounts and unknown sizes."""
    size = sizes.get(vm_size.lower())
    if not quotas.batch_service or size is None:
        return []
    own = {i.lower() for i in pool_ids}
    others = [u for u in used if u.id.lower() not in own]
    wanted: list[tuple[QuotaKind, str, int | None, str | None]] = []
    if dedicated:
        wanted.append(("dedicated", "dedicated core quota", quotas.dedicated, None))
        family = quotas.family(size.family) if quotas.family_enforced else None
        if family is not None:
            label = f"dedicated core quota for VM family {family[0]}"
            wanted.append(("family", label, family[1], family[0]))
    if spot:
        wanted.append(("spot", "low-priority (Spot) core quota", quotas.low_priority, None))
    out = []
    for kind, label, limit, family_name in wanted:
        if limit is None:
            continue
        held = []
        for use in others:
            other = sizes.get(use.vm_size.lower())
            count = use.low_priority if kind == "spot" else use.dedicated
            if other is None or not count:
                continue
            if family_name and other.family.lower() != family_name.lower():
                continue
            held.append((use.id, count, count * other.cores, use.vm_size))
        nodes = spot if kind == "spot" else dedicated
        in_use = sum(h[2] for h in held)
        out.append(CoreQuota(kind, label, limit, in_use, nodes * size.cores, _holders(held)))
    return out


def quota_hint(account: str, group: str) -> str:
    """Where to see and raise a Batch account's quotas."""
    return (
        f"request a quota increase for Batch account {account} (Azure portal > Batch "
        f"accounts > {account} > Quotas > Request quota increase); see its quotas with "
        f"`az batch account show --name {account} --resource-group {group} --query "
        '"{dedicated:dedicatedCoreQuota, families:dedicatedCoreQuotaPerVmFamily, '
        'lowPriority:lowPriorityCoreQuota, pools:poolQuota}"`'
    )
