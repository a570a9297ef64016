"""Key Vault (data plane, secrets): GetSecret for the vaults and secrets the admin endpoint
sets, with Key Vault's challenge-based bearer authentication (`batchimage.sandbox.auth.
check_keyvault`) and its RBAC data action (`access`); a vault nobody set a secret in does
not resolve (`plane.gate`)."""

from __future__ import annotations

from batchimage.sandbox.context import World
from batchimage.sandbox.services import Service
from batchimage.sandbox.services.authorization.enforce import register_plane
from batchimage.sandbox.services.keyvault import access
from batchimage.sandbox.services.keyvault.urls import ROUTES


def _start(world: World) -> None:
    register_plane("keyvault", access.need, access.refuse)


SERVICE = Service("keyvault", routes=ROUTES, start=_start)
