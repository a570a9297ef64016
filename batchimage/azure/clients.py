"""One factory for the real Azure SDK clients of a cloud profile.

Every client gets the profile's ARM endpoint and token scope, and verifies TLS through the
profile's CA bundle (`connection_verify`); all of one `AzureClients`' clients send through
one pool of kept-alive connections (a TLS handshake per host and thread, not per client).
The ARM clients share the process's request budget for the subscription
(`batchimage.azure.throttle`): a 429 one of them gets makes every ARM request wait.
The credential is `DefaultAzureCredential` for real clouds (led by a CI runner's federated
sign-in where there is one: `federated.py`), or `ClientSecretCredential` when the profile
carries a service principal (the sandbox: `authority=<sandbox URL>`,
`disable_instance_discovery=True`).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from batchimage.azure.cloud import SDK_POLL_S, CloudProfile, scaled
from batchimage.azure.throttle import budget_for, hooks
from batchimage.core.errors import UsageError

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.core.credentials import TokenCredential
    from azure.keyvault.secrets import SecretClient
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.batch import BatchManagementClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.storage import StorageManagementClient
    from azure.storage.blob import BlobServiceClient

    from batchimage.azure.snapshot import Snapshot


def make_credential(profile: CloudProfile) -> TokenCredential:
    """The credential for `profile`: its service principal if it has one, else the default
    chain, led by the CI runner's federated sign-in when the environment sets one up
    (`federated.py`: GitHub Actions OpenID Connect, an Azure Pipelines service connection)."""
    if profile.client_id and profile.client_secret and profile.tenant_id:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            profile.tenant_id,
            profile.client_id,
            profile.client_secret,
            authority=profile.authority_host,
            disable_instance_discovery=profile.disable_instance_discovery,
            connection_verify=profile.verify,
        )
    from azure.identity import DefaultAzureCredential

    from batchimage.azure.federated import ci_credential

    chain = DefaultAzureCredential(
        authority=profile.authority_host, connection_verify=profile.verify
    )
    first = ci_credential(os.environ, authority=profile.authority_host, verify=profile.verify)
    if first is not None:  # a CI runner's federated sign-in, ahead of the default chain
        chain.credentials = (first, *chain.credentials)
    return chain


POOL_SIZE = 32  # connections kept per host: the engine's step threads plus preflight's


class AzureClients:
    """Lazily built SDK clients for one profile + subscription (+ credential)."""

    def __init__(
        self,
        profile: CloudProfile,
        subscription_id: str | None = None,
        credential: TokenCredential | None = None,
        snapshot: Snapshot | None = None,
        **client_kwargs: Any,
    ) -> None:
        """`snapshot`: answer repeated reads from it (`batchimage.azure.snapshot`; `plan` only)."""
        sub = subscription_id or profile.subscription_id
        if not sub:
            raise UsageError(
                "a subscription id is needed (spec `subscription`, or AZURE_SUBSCRIPTION_ID)"
            )
        self.profile = profile
        self.subscription_id = sub
        self._credential = credential
        self.snapshot = snapshot
        self._extra = client_kwargs

    @cached_property
    def _session(self) -> Any:
        """One requests session (connection pool) for every client made here."""
        import requests

        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=POOL_SIZE)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _transport(self) -> dict[str, Any]:
        """`transport=`: a transport over the shared session (unless the caller gave one)."""
        if "transport" in self._extra:
            return {}
        from azure.core.pipeline.transport import RequestsTransport

        kwargs = {
            "session": self._session,
            "session_owner": False,
            "connection_verify": self.profile.verify,
        }
        if self.snapshot is not None:
            from batchimage.azure.snapshot import SnapshotTransport

            return {"transport": SnapshotTransport(self.snapshot, **kwargs)}
        return {"transport": RequestsTransport(**kwargs)}

    @cached_property
    def credential(self) -> TokenCredential:
        return self._credential or make_credential(self.profile)

    def _mgmt_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self.profile.arm_endpoint,
            "credential_scopes": [self.profile.arm_scope],
            "connection_verify": self.profile.verify,
            **self._transport(),
            "polling_interval": scaled(self.profile, SDK_POLL_S),
        }
        budget = budget_for(self.profile.arm_endpoint, self.subscription_id)
        return {**kwargs, **self._extra, **hooks(budget, self._extra)}

    @cached_property
    def resource(self) -> ResourceManagementClient:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(
            self.credential, self.subscription_id, **self._mgmt_kwargs()
        )

    @cached_property
    def network(self) -> NetworkManagementClient:
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(self.credential, self.subscription_id, **self._mgmt_kwargs())

    @cached_property
    def compute(self) -> ComputeManagementClient:
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(self.credential, self.subscription_id, **self._mgmt_kwargs())

    @cached_property
    def storage(self) -> StorageManagementClient:
        from azure.mgmt.storage import StorageManagementClient

        return StorageManagementClient(self.credential, self.subscription_id, **self._mgmt_kwargs())

    @cached_property
    def batch_management(self) -> BatchManagementClient:
        from azure.mgmt.batch import BatchManagementClient

        return BatchManagementClient(self.credential, self.subscription_id, **self._mgmt_kwargs())

    @cached_property
    def authorization(self) -> AuthorizationManagementClient:
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient(
            self.credential, self.subscription_id, **self._mgmt_kwargs()
        )

    def blob_service(self, account_url: str, credential: Any = None) -> BlobServiceClient:
        """A blob client for an account's blob endpoint (from the account's primaryEndpoints).

        `credential`: an account key / SAS / dict; default the profile's token credential.
        """
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(
            account_url,
            credential=credential or self.credential,
            connection_verify=self.profile.verify,
            **self._transport(),
            **self._extra,
        )

    def secret_client(self, secret_uri: str) -> SecretClient:
        """A Key Vault secrets client for the vault of `secret_uri` (`CloudProfile.vault_url`)."""
        from azure.keyvault.secrets import SecretClient

        return SecretClient(
            self.profile.vault_url(secret_uri),
            self.credential,
            connection_verify=self.profile.verify,
            # the sandbox serves every vault on its loopback host, not <vault>.vault.azure.net
            verify_challenge_resource=self.profile.name != "sandbox",
            **self._transport(),
            **self._extra,
        )

    def read_secret(self, secret_uri: str) -> str:
        """The value of the Key Vault secret `secret_uri` names (`azure.key_vault`)."""
        from batchimage.azure.key_vault import read_secret

        return read_secret(self, secret_uri)

    def batch(self, account_endpoint: str) -> BatchClient:
        """A Batch data-plane client for an account's `accountEndpoint` (https:// added)."""
        from azure.batch import BatchClient

        endpoint = account_endpoint if "://" in account_endpoint else f"https://{account_endpoint}"
        return BatchClient(
            endpoint,
            self.credential,
            credential_scopes=[self.profile.batch_scope],
            connection_verify=self.profile.verify,
            **self._transport(),
            **self._extra,
        )
