"""Key Vault data plane routes, under `<sandbox>/keyvault/<vault>` (the vault URL)."""

from __future__ import annotations

from batchimage.sandbox.routing import Route
from batchimage.sandbox.services.keyvault import responses as r

VAULT = "/keyvault/{vault}"

ROUTES = [
    Route("GET", VAULT + "/secrets/{name}", r.get_secret, "GetSecret", plane="keyvault"),
    Route("GET", VAULT + "/secrets/{name}/{version}", r.get_secret, "GetSecret", plane="keyvault"),
]
