"""Microsoft.Storage: storage accounts whose blob endpoints are Azurite's."""

from __future__ import annotations

from batchimage.sandbox import arm, seed
from batchimage.sandbox.context import World
from batchimage.sandbox.services import Service
from batchimage.sandbox.services.storage import models
from batchimage.sandbox.services.storage.urls import ROUTES


def _seed(world: World) -> None:
    """The seeded StorageV2 account `sandboxstore` in `sandbox-rg`."""
    body = {
        "location": world.identity.location,
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
    }
    fields = models.account_fields(world, body, None)
    record = arm.put_ready(
        world, seed.RESOURCE_GROUP, models.NS, "storageAccounts", seed.STORAGE_ACCOUNT, fields
    )
    models.publish(world, record)


SERVICE = Service(
    "storage", routes=ROUTES, seed=_seed, provisioners={"storage_account": models.provision}
)
