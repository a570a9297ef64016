"""The world a fresh sandbox starts with (the quickstart spec relies on these names)."""

from __future__ import annotations

from batchimage.sandbox.context import World

SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001"
SUBSCRIPTION_NAME = "batchimage sandbox"
TENANT_ID = "00000000-0000-4000-8000-0000000000a1"
CLIENT_ID = "00000000-0000-4000-8000-0000000000c1"
LOCATION = "eastus"
RESOURCE_GROUP = "sandbox-rg"
STORAGE_ACCOUNT = "sandboxstore"
BATCH_ACCOUNT = "sandboxbatch"


def seed_world(world: World) -> None:
    """Let every service put its part of a fresh world into the (empty) store."""
    from batchimage.sandbox.services import load_services

    for service in load_services():
        if service.seed is not None:
            service.seed(world)
    world.store.meta()["seeded"] = True
    world.store.touch()
