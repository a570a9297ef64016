"""The Batch data plane (`/batch/<account>/...`, what a Batch account's accountEndpoint
names): pools, allocation and nodes, start tasks and node files, supported images,
autoscale, jobs and tasks, each needing its Entra ID action or data action (`access`).
Gallery images are checked through the Compute service's facts; a live pool's gallery
image version cannot be deleted (in-use check); the nodes of user-subscription
accounts count in the subscription's Compute usage.
"""

from __future__ import annotations

from batchimage.sandbox.context import World
from batchimage.sandbox.services import Service
from batchimage.sandbox.services.authorization.enforce import register_plane
from batchimage.sandbox.services.batch_data import access
from batchimage.sandbox.services.batch_data.models import allocation, images
from batchimage.sandbox.services.batch_data.urls import ROUTES
from batchimage.sandbox.services.compute.models import facts, quota


def _start(world: World) -> None:
    facts.register_in_use_check(images.version_in_use)
    quota.register_usage_source(allocation.subscription_vms)
    register_plane("batch", access.need, access.refuse)


SERVICE = Service("batch_data", routes=ROUTES, start=_start)
