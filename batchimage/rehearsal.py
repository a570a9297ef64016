"""Rehearsal (`--sandbox`): run a spec written for Azure against the local Azure, unchanged.

A spec names some things as already existing: the storage accounts of a VHD upload, a VHD
export, an unmanaged OS disk or the blob state; the Batch accounts of its pools; existing
subnets (build VM, pools). Before a rehearsal talks to the sandbox, `rehearsal_clients`
makes those exist there (idempotent; `sandbox_client.provision`) in the spec's subscription
and regions, then hands back the SDK clients. Everything the pipeline itself creates
(resource groups, the gallery and its definition, the build network) is left to it.

    prerequisites(spec, subscription)  -> the items to provision (pure; no I/O)
    rehearsal_clients(spec)            -> AzureClients for the sandbox, prerequisites made

Not rehearsable: a `vhd_url` base (the VHD blob itself must already be in the sandbox)
and `user_managed` pool public IPs (no provisioner for them yet).
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from batchimage.azure.clients import AzureClients
    from batchimage.sandbox_client import Connection

SUBNET_ID = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/"
    r"Microsoft\.Network/virtualNetworks/(?P<vnet>[^/]+)/subnets/(?P<name>[^/]+)",
    re.IGNORECASE,
)

_done: set[str] = set()
_done_lock = threading.Lock()


def prerequisites(spec: Any, subscription: str) -> list[dict[str, Any]]:
    """What `spec` expects to exist already, as `sandbox_client.provision` items (deduplicated,
    groups before what they hold is the provisioner's job)."""
    from batchimage.spec.settings import AzureBlobState
    from batchimage.steps.preflight.facts import storage_uses

    items: dict[tuple[str, ...], dict[str, Any]] = {}

    def add(item: dict[str, Any]) -> None:
        item = {"subscription": subscription, "location": spec.location, **item}
        key = (item["kind"], item["subscription"], item["group"], item.get("vnet", ""))
        items.setdefault(tuple(k.lower() for k in (*key, item["name"])), item)

    for use in storage_uses(spec):
        add({"kind": "storage_account", "name": use.account, "group": use.group})
    if isinstance(spec.state, AzureBlobState):
        state = spec.state
        add(
            {
                "kind": "storage_account",
                "name": state.storage_account,
                "group": state.resource_group,
            }
        )
    staging = staging_store(spec, subscription)
    if staging is not None:
        add(staging)
    for pool in spec.pools:
        account = pool.batch_account
        batch = {
            "kind": "batch_account",
            "name": account.name,
            "group": account.resource_group or spec.resource_group,
            "location": account.location or spec.location,
            "pool_allocation_mode": "UserSubscription",
        }
        if staging is not None and staging["for"] == account.name:
            batch["auto_storage"] = staging["id"]
        add(batch)
    subnets = [(spec.image.build.network.subnet_id, spec.location)]
    subnets += [
        (pool.network.subnet_id, pool.batch_account.location or spec.location)
        for pool in spec.pools
    ]
    per_vnet: dict[str, int] = {}
    for subnet_id, location in subnets:
        found = SUBNET_ID.fullmatch(subnet_id or "")
        if found is None:
            continue
        vnet = f"{found['sub']}/{found['group']}/{found['vnet']}".lower()
        index = per_vnet.setdefault(vnet, len(per_vnet))
        count = sum(1 for item in items.values() if _vnet_of(item) == vnet)
        add(
            {
                "kind": "subnet",
                "subscription": found["sub"],
                "group": found["group"],
                "vnet": found["vnet"],
                "name": found["name"],
                "location": location,
                "address_prefix": f"10.{index}.{count}.0/24",
                "vnet_prefix": f"10.{index}.0.0/16",
            }
        )
    return list(items.values())


def staging_store(spec: Any, subscription: str) -> dict[str, Any] | None:
    """The storage account a rehearsal gives the first pool's Batch account as its
    auto-storage, when a `file` customize step needs one to stage in and the spec names no
    other (on Azure that account's auto-storage does it); None otherwise."""
    from batchimage.core.hashing import short_hash
    from batchimage.steps.staging import candidates

    if not any(step.action == "file" for step in spec.image.customize):
        return None
    if candidates(spec) or not spec.pools:
        return None
    account = spec.pools[0].batch_account
    group = account.resource_group or spec.resource_group
    name = "bistage" + short_hash([subscription.lower(), group.lower(), account.name])[:12]
    return {
        "kind": "storage_account",
        "name": name,
        "group": group,
        "location": account.location or spec.location,
        "for": account.name,
        "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
        f"Microsoft.Storage/storageAccounts/{name}",
    }


def _vnet_of(item: dict[str, Any]) -> str | None:
    if item["kind"] != "subnet":
        return None
    return f"{item['subscription']}/{item['group']}/{item['vnet']}".lower()


def rehearsal_clients(
    spec: Any, say: Callable[[str], None] | None = None, **client_kwargs: Any
) -> AzureClients:
    """Clients for the sandbox (started for this process if none runs, told to `say`),
    once the spec's existing prerequisites exist there (made once per process and sandbox)."""
    from batchimage.azure import cloud
    from batchimage.azure.clients import AzureClients
    from batchimage.core.redact import register_secret
    from batchimage.sandbox_client import ensure_running

    conn = ensure_running(say=say)
    profile = cloud.sandbox(conn)
    register_secret(profile.client_secret)
    clients = AzureClients(profile, spec.subscription, **client_kwargs)
    items = prerequisites(spec, clients.subscription_id)
    key = json.dumps([conn.arm_endpoint, clients.subscription_id, items], sort_keys=True)
    with _done_lock:
        if key not in _done:
            provision(conn, clients, spec.location, items)
            _done.add(key)
    return clients


def provision(
    conn: Connection, clients: AzureClients, location: str, items: list[dict[str, Any]]
) -> list[str]:
    """Make the subscription known (providers registered) if the sandbox lacks it, then
    the items; returns their resource ids."""
    from batchimage import sandbox_client
    from batchimage.azure.errors import azure_call
    from batchimage.core.errors import AzureError

    try:
        with azure_call("read the rehearsal's subscription"):
            clients.resource.providers.get("Microsoft.Compute")
    except AzureError as err:
        if err.code != "SubscriptionNotFound":
            raise
        sandbox_client.add_subscription(conn, clients.subscription_id, registered=True)
    return sandbox_client.provision(conn, clients.subscription_id, location, items)
