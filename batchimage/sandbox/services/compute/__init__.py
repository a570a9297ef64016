"""Microsoft.Compute: virtual machines, extensions, run commands, disks, images,
galleries, marketplace images, usages and resource SKUs."""

from __future__ import annotations

from batchimage.sandbox.context import World
from batchimage.sandbox.services import Service
from batchimage.sandbox.services.compute.models import blobs, galleries
from batchimage.sandbox.services.compute.urls import ROUTES


def _seed(world: World) -> None:
    blobs.publish_export_account(world)


SERVICE = Service(
    "compute",
    routes=ROUTES,
    seed=_seed,
    start=blobs.publish_export_account,
    provisioners={"gallery": galleries.provision_gallery},
)
