"""What a Key Vault request meets before its handler: the vault's host must resolve (an
unknown vault raises `Unreachable`: the app drops the connection), then Key Vault's
bearer-token check."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import auth
from batchimage.sandbox.apierrors import Unreachable
from batchimage.sandbox.context import World
from batchimage.sandbox.services.keyvault import models

PREFIX = "/keyvault/"


def gate(world: World, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """The token's claims for a request to a known vault; `Unreachable` or 401 otherwise."""
    name = path[len(PREFIX) :].split("/", 1)[0]
    with world.store.lock:
        known = bool(name) and models.vault(world, name) is not None
    if not known:
        raise Unreachable(name)
    return auth.check_keyvault(world, headers)
