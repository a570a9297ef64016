"""Key Vault (data plane, secrets): GetSecret for the vaults and secrets the admin endpoint
sets, with Key Vault's challenge-based bearer authentication (`batchimage.sandbox.auth.
check_keyvault`); a vault nobody set a secret in does not resolve (`plane.gate`)."""

from __future__ import annotations

from batchimage.sandbox.services import Service
from batchimage.sandbox.services.keyvault.urls import ROUTES

SERVICE = Service("keyvault", routes=ROUTES)
