"""Microsoft.Resources: subscriptions, resource groups, resource providers."""

from __future__ import annotations

from batchimage.sandbox import seed
from batchimage.sandbox.context import World
from batchimage.sandbox.services import Service
from batchimage.sandbox.services.resources import models
from batchimage.sandbox.services.resources.urls import ROUTES


def _seed(world: World) -> None:
    models.add_subscription(world, world.identity.subscription_id, seed.SUBSCRIPTION_NAME, True)
    models.put_group(
        world,
        world.identity.subscription_id,
        seed.RESOURCE_GROUP,
        {"location": world.identity.location},
    )


SERVICE = Service(
    "resources", routes=ROUTES, seed=_seed, provisioners={"resource_group": models.provision_group}
)
