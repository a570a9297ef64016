"""Microsoft.Authorization: built-in roles, principals and role assignments, the
permissions API, and role-based access control on every ARM write and Batch data-plane
operation (see `enforce`)."""

from __future__ import annotations

from batchimage.sandbox.context import World
from batchimage.sandbox.services import Service
from batchimage.sandbox.services.authorization import enforce, models
from batchimage.sandbox.services.authorization.urls import ROUTES


def _start(world: World) -> None:
    world.checks.append(enforce.check)
    with world.store.transaction():  # a world seeded before roles existed gets the defaults
        meta = world.store.meta()
        if meta.get("seeded") and not meta.get(models.SEEDED_FLAG):
            models.seed_defaults(world)


SERVICE = Service("authorization", routes=ROUTES, seed=models.seed_defaults, start=_start)
