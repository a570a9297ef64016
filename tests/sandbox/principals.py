"""Test principals: a new service principal in the sandbox (through the admin endpoint) and
real SDK clients that sign in as it; a credential that asks for another service's token.

    clients, who = as_principal(cloud, admin, "reader", roles=[{"role": "Reader", "scope": s}])
    who["objectId"]; clients.resource.resource_groups.get(...)
    AzureClients(cloud, credential=ScopedCredential(cloud, "https://storage.azure.com/.default"))
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from azure.core.credentials import AccessToken

from batchimage.azure.clients import AzureClients, make_credential
from batchimage.azure.cloud import CloudProfile
from batchimage.sandbox.admin import SandboxAdmin


def as_principal(
    cloud: CloudProfile,
    admin: SandboxAdmin,
    name: str,
    roles: list[dict[str, str]] | None = None,
) -> tuple[AzureClients, dict[str, Any]]:
    """A new principal (default roles: Owner of the subscription) and clients signed in as it."""
    who = admin.add_principal(name, roles)
    profile = principal_profile(cloud, who)
    return AzureClients(profile), who


def principal_profile(cloud: CloudProfile, who: dict[str, Any]) -> CloudProfile:
    """The sandbox's cloud profile, signing in as principal `who`."""
    return replace(cloud, client_id=who["clientId"], client_secret=who["clientSecret"])


class ScopedCredential:
    """The profile's own credential, but every token is asked for `scope` (whatever the
    client wanted): a token minted for another audience."""

    def __init__(self, cloud: CloudProfile, scope: str) -> None:
        self.inner = make_credential(cloud)
        self.scope = scope

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return self.inner.get_token(self.scope, **kwargs)
