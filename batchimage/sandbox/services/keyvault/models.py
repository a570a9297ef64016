"""Key Vault's secrets: vaults and their secrets' versions in the world store.

Table `keyvault`: vault name (lower case) -> `{"name", "secrets": {secret name (lower
case) -> {"name", "versions": [{"version", "value", "created"}, ...]}}}`, oldest version
first. Names compare without case (a vault is a DNS name; Key Vault object names are
case-insensitive). A vault exists from its first secret on (set by the admin endpoint);
`reset` forgets them all. Values are test data but are never logged.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from batchimage.sandbox.context import World

TABLE = "keyvault"
# learn.microsoft.com "About keys, secrets, and certificates" (vault names 3-24, object
# names 1-127 of letters, digits and dashes)
VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


def vault(world: World, name: str) -> dict[str, Any] | None:
    """The vault `name`, or None when no secret was ever set in it."""
    found: dict[str, Any] | None = world.store.table(TABLE).get(name.lower())
    return found


def secret_version(
    world: World, vault_name: str, name: str, version: str = ""
) -> tuple[str, dict[str, Any]] | None:
    """(the secret's stored name, its version `version` or its latest), or None."""
    found = vault(world, vault_name)
    secret = found["secrets"].get(name.lower()) if found else None
    if secret is None:
        return None
    if not version:
        return secret["name"], secret["versions"][-1]
    for item in secret["versions"]:
        if item["version"] == version.lower():
            return secret["name"], item
    return None


def set_secret(world: World, vault_name: str, name: str, value: str) -> str:
    """Add a new version of secret `name` in vault `vault_name` (made if new); its version id."""
    if not VAULT_NAME.match(vault_name):
        raise ValueError(
            f"vault name {vault_name!r}: 3-24 letters, digits and dashes, starting with a "
            "letter, ending with a letter or digit, no two dashes in a row"
        )
    if not SECRET_NAME.match(name):
        raise ValueError(f"secret name {name!r}: 1-127 letters, digits and dashes")
    table = world.store.table(TABLE)
    found = table.setdefault(vault_name.lower(), {"name": vault_name.lower(), "secrets": {}})
    secret = found["secrets"].setdefault(name.lower(), {"name": name, "versions": []})
    version = uuid.uuid4().hex
    secret["versions"].append({"version": version, "value": value, "created": int(time.time())})
    world.store.touch()
    return version


def delete_secret(world: World, vault_name: str, name: str) -> bool:
    """Forget secret `name` (every version); False when there was none."""
    found = vault(world, vault_name)
    if found is None or found["secrets"].pop(name.lower(), None) is None:
        return False
    world.store.touch()
    return True
