"""Microsoft.Batch management: Batch accounts pointing at the sandbox's Batch data plane."""

from __future__ import annotations

from batchimage.sandbox import arm, seed
from batchimage.sandbox.context import World
from batchimage.sandbox.services import Service
from batchimage.sandbox.services.batch_management import models
from batchimage.sandbox.services.batch_management.urls import ROUTES


def _seed(world: World) -> None:
    """The seeded `sandboxbatch` account in user-subscription mode, auto-storage `sandboxstore`."""
    sub = world.identity.subscription_id
    storage_id = arm.resource_id(
        sub, seed.RESOURCE_GROUP, "Microsoft.Storage", "storageAccounts", seed.STORAGE_ACCOUNT
    )
    body = {
        "properties": {
            "poolAllocationMode": "UserSubscription",
            "autoStorage": {"storageAccountId": storage_id},
        }
    }
    fields = models.account_fields(world, body, None)
    arm.put_ready(
        world, seed.RESOURCE_GROUP, models.NS, "batchAccounts", seed.BATCH_ACCOUNT, fields
    )


SERVICE = Service(
    "batch_management", routes=ROUTES, seed=_seed, provisioners={"batch_account": models.provision}
)
