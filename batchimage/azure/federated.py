"""Federated sign-in on CI runners, without a secret: GitHub Actions' OpenID Connect ID
tokens, and Azure Pipelines' service connections using workload identity federation.

Each asks its runner for a fresh ID token whenever Entra ID needs a new assertion, so a
run longer than an ID token's few minutes keeps signing in. The Azure CLI session that
`azure/login` or `AzureCLI@2` leave behind cannot: it holds the one ID token it was given,
and once that expired every new token (another audience, such as Batch's or storage's,
or the next hour's) fails with AADSTS700024 (Azure/azure-cli#28708, Azure/login#180).

- GitHub Actions (a job with `permissions: id-token: write`): `ACTIONS_ID_TOKEN_REQUEST_URL`
  and `ACTIONS_ID_TOKEN_REQUEST_TOKEN` set by the runner, `AZURE_CLIENT_ID` and
  `AZURE_TENANT_ID` set by the workflow; no `AZURE_CLIENT_SECRET` (that would be a
  service principal with a secret: the environment credential's).
- Azure Pipelines (an `AzureCLI@2` task on a workload identity federation service
  connection): `AZURESUBSCRIPTION_CLIENT_ID`, `AZURESUBSCRIPTION_TENANT_ID`,
  `AZURESUBSCRIPTION_SERVICE_CONNECTION_ID` and `SYSTEM_OIDCREQUESTURI` set by the task and
  the agent, `SYSTEM_ACCESSTOKEN` mapped from `$(System.AccessToken)` by the pipeline.

    ci_credential(os.environ, authority="https://login.microsoftonline.com", verify=True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core.exceptions import ClientAuthenticationError
from azure.identity import AzurePipelinesCredential, ClientAssertionCredential

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # the audience Entra ID takes by default
GITHUB = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
GITHUB_IDENTITY = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID")
PIPELINES = (
    "AZURESUBSCRIPTION_CLIENT_ID",
    "AZURESUBSCRIPTION_TENANT_ID",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
    "SYSTEM_ACCESSTOKEN",
    "SYSTEM_OIDCREQUESTURI",
)
SECRETS = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH")
TIMEOUT_S = 30


def github_id_token(url: str, bearer: str, audience: str = EXCHANGE_AUDIENCE) -> str:
    """A fresh ID token from the GitHub Actions runner's token service (`GET <url>&audience=`
    with the request token as bearer; the answer is `{"value": <JWT>}`)."""
    import requests

    where = f"{url}{'&' if '?' in url else '?'}audience={quote(audience, safe='')}"
    try:
        answer = requests.get(
            where, headers={"Authorization": f"bearer {bearer}"}, timeout=TIMEOUT_S
        )
        answer.raise_for_status()
        value = answer.json()["value"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise ClientAuthenticationError(
            f"GitHub Actions gave no ID token ({type(exc).__name__}: {exc}); the job needs "
            "`permissions: id-token: write`"
        ) from exc
    if not isinstance(value, str) or not value:
        raise ClientAuthenticationError("GitHub Actions gave an empty ID token")
    return value


class GitHubActionsCredential(ClientAssertionCredential):
    """Entra ID tokens for `AZURE_CLIENT_ID` in exchange for the runner's ID tokens, one
    asked for whenever a new assertion is needed."""

    def __init__(self, environ: Mapping[str, str], **kwargs: Any) -> None:
        url, bearer = (environ[name] for name in GITHUB)
        super().__init__(
            environ["AZURE_TENANT_ID"],
            environ["AZURE_CLIENT_ID"],
            lambda: github_id_token(url, bearer),
            **kwargs,
        )


def _set(environ: Mapping[str, str], names: tuple[str, ...]) -> bool:
    return all(environ.get(name) for name in names)


def ci_credential(
    environ: Mapping[str, str], *, authority: str, verify: str | bool
) -> TokenCredential | None:
    """The federated credential of the CI runner this process runs on, or None when the
    environment sets neither up."""
    if _set(environ, PIPELINES):
        return AzurePipelinesCredential(
            tenant_id=environ["AZURESUBSCRIPTION_TENANT_ID"],
            client_id=environ["AZURESUBSCRIPTION_CLIENT_ID"],
            service_connection_id=environ["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
            system_access_token=environ["SYSTEM_ACCESSTOKEN"],
            authority=authority,
            connection_verify=verify,
        )
    if _set(environ, GITHUB + GITHUB_IDENTITY) and not any(environ.get(s) for s in SECRETS):
        return GitHubActionsCredential(environ, authority=authority, connection_verify=verify)
    return None
