"""Federated sign-in on CI runners: the credential the tool builds for a real cloud takes
a GitHub Actions or Azure Pipelines runner's ID tokens, exchanged at the sandbox's Entra ID
for a principal with a federated credential, and asks the runner afresh for each new
token. The runners' token services are local stand-ins (they are not Azure); the token
exchange and every ARM call are the sandbox's, through the real SDK clients."""

from __future__ import annotations

import base64
import json
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import AzurePipelinesCredential, EnvironmentCredential
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from batchimage.azure.clients import AzureClients, make_credential
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.federated import GitHubActionsCredential
from batchimage.azure.signin import why_no_token
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from tests.engine.procs import REPO
from tests.engine.sandbox_cli import ci_env, cli

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
MAIN = "repo:contoso/image-specs:ref:refs/heads/main"
PULL = "repo:contoso/image-specs:pull_request"
PIPELINES_ISSUER = "https://vstoken.dev.azure.com/00000000-0000-4000-8000-00000000c0de"
CONNECTION = "sc://contoso/images/batchimage-federated"
CONNECTION_ID = "8f3e5a2c-0000-4000-8000-000000000042"
CI_NAMES = (
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURESUBSCRIPTION_CLIENT_ID",
    "AZURESUBSCRIPTION_TENANT_ID",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
    "SYSTEM_ACCESSTOKEN",
    "SYSTEM_OIDCREQUESTURI",
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issuer:
    """A CI runner's token service: signs ID tokens (RS256) for one subject; counts the
    tokens it gave and remembers how it was asked."""

    subject: str
    issuer: str
    lifetime_s: int = 300
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    given: int = 0
    asked: list[dict[str, Any]] = field(default_factory=list)

    @property
    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "n": b64(n), "e": b64(e)}]}

    def id_token(self, audience: str) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": "k1"}
        claims = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_s,
        }
        signed = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        sig = self.key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        self.given += 1
        return f"{signed}.{b64(sig)}"


@pytest.fixture
def runner() -> Iterator[tuple[str, dict[str, Issuer]]]:
    """A local HTTP server standing in for both runners' token services:
    GET /github?api-version=2.0&audience=A (GitHub's), POST /pipelines?serviceConnectionId=
    (Azure DevOps'); the issuers behind them, keyed github / pipelines, are the test's to set."""
    issuers: dict[str, Issuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def answer(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            issuer = issuers["github"]
            issuer.asked.append({"auth": self.headers.get("Authorization"), **query})
            self.answer({"value": issuer.id_token(query.get("audience", ""))})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            issuer = issuers["pipelines"]
            issuer.asked.append({"auth": self.headers.get("Authorization"), **query})
            self.answer({"oidcToken": issuer.id_token("api://AzureADTokenExchange")})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", issuers
    server.shutdown()
    server.server_close()


@pytest.fixture
def real_cloud(cloud: CloudProfile, monkeypatch: pytest.MonkeyPatch) -> CloudProfile:
    """The sandbox as a real cloud is reached: no service principal in the profile, the
    credential is the tool's chain; no CI sign-in in the environment yet."""
    for name in CI_NAMES:
        monkeypatch.delenv(name, raising=False)
    return replace(cloud, client_id=None, client_secret=None)


def federated_principal(
    admin: SandboxAdmin, sandbox: Connection, issuer: Issuer, subject: str
) -> dict[str, Any]:
    who = admin.add_principal(
        "ci", roles=[{"role": "Reader", "scope": f"/subscriptions/{sandbox.subscription_id}"}]
    )
    admin.add_federated_credential(who["objectId"], issuer.issuer, subject, issuer.jwks)
    return who


GitHubSignIn = Callable[..., tuple[Any, Issuer]]


@pytest.fixture
def github_signin(
    real_cloud: CloudProfile,
    sandbox: Connection,
    admin: SandboxAdmin,
    runner: tuple[str, dict[str, Issuer]],
    monkeypatch: pytest.MonkeyPatch,
) -> GitHubSignIn:
    """`sign_in(issued, trusted=MAIN, lifetime_s=300, other_key=False)`: a GitHub Actions
    job whose ID tokens name subject `issued`, for a principal trusting subject `trusted`
    (with another key than the runner's: `other_key`); the tool's credential and the runner's
    issuer."""
    url, issuers = runner

    def sign_in(
        issued: str, trusted: str = MAIN, lifetime_s: int = 300, other_key: bool = False
    ) -> tuple[Any, Issuer]:
        github = issuers["github"] = Issuer(issued, GITHUB_ISSUER, lifetime_s)
        trusted_keys = Issuer(issued, GITHUB_ISSUER) if other_key else github
        who = federated_principal(admin, sandbox, trusted_keys, trusted)
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{url}/github?api-version=2.0")
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-request-token")
        monkeypatch.setenv("AZURE_CLIENT_ID", who["clientId"])
        monkeypatch.setenv("AZURE_TENANT_ID", sandbox.tenant_id)
        return make_credential(real_cloud), github

    return sign_in


def test_without_a_ci_runner_the_chain_is_the_default_one(real_cloud: CloudProfile) -> None:
    chain = make_credential(real_cloud)
    assert isinstance(chain.credentials[0], EnvironmentCredential)  # type: ignore[attr-defined]


def test_github_actions_openid_connect_signs_in_and_asks_afresh_per_token(
    github_signin: GitHubSignIn, real_cloud: CloudProfile, sandbox: Connection
) -> None:
    credential, github = github_signin(MAIN)
    assert isinstance(credential.credentials[0], GitHubActionsCredential)
    clients = AzureClients(real_cloud, credential=credential)
    group = clients.resource.resource_groups.get(sandbox.resource_group)
    assert group.name == sandbox.resource_group
    assert github.given == 1
    assert github.asked[0] == {
        "auth": "bearer runner-request-token",
        "api-version": "2.0",
        "audience": "api://AzureADTokenExchange",
    }
    # Another audience later (Batch's): a new assertion, not the first one again.
    token = credential.get_token(real_cloud.batch_scope)
    assert token.token and github.given == 2


def test_a_subject_without_a_federated_credential_is_refused_and_said_so(
    github_signin: GitHubSignIn, real_cloud: CloudProfile
) -> None:
    credential, _ = github_signin(PULL, trusted=MAIN)  # a pull request's job, trusted: main
    with pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token(real_cloud.arm_scope)
    said = why_no_token(caught.value, credential)
    assert said.startswith("GitHub Actions OpenID Connect could not get a token: ")
    assert "AADSTS70021" in said and PULL in said


def test_an_expired_id_token_is_refused(
    github_signin: GitHubSignIn, real_cloud: CloudProfile
) -> None:
    credential, _ = github_signin(MAIN, lifetime_s=-60)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700024"):
        credential.get_token(real_cloud.arm_scope)


def test_another_issuers_key_is_refused(
    github_signin: GitHubSignIn, real_cloud: CloudProfile
) -> None:
    credential, _ = github_signin(MAIN, other_key=True)  # same claims, another key
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        credential.get_token(real_cloud.arm_scope)


def test_a_secret_in_the_environment_keeps_the_environment_credential_first(
    real_cloud: CloudProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:9/github?x=1")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-4000-8000-0000000000c1")
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-4000-8000-0000000000a1")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "a-service-principal-secret")
    chain = make_credential(real_cloud)
    assert isinstance(chain.credentials[0], EnvironmentCredential)  # type: ignore[attr-defined]


def test_an_azure_pipelines_service_connection_signs_in(
    real_cloud: CloudProfile,
    sandbox: Connection,
    admin: SandboxAdmin,
    runner: tuple[str, dict[str, Issuer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, issuers = runner
    pipelines = issuers["pipelines"] = Issuer(CONNECTION, PIPELINES_ISSUER)
    who = federated_principal(admin, sandbox, pipelines, CONNECTION)
    # What AzureCLI@2 and the agent set, and what the pipeline maps (System.AccessToken).
    monkeypatch.setenv("AZURESUBSCRIPTION_CLIENT_ID", who["clientId"])
    monkeypatch.setenv("AZURESUBSCRIPTION_TENANT_ID", sandbox.tenant_id)
    monkeypatch.setenv("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", CONNECTION_ID)
    monkeypatch.setenv("SYSTEM_OIDCREQUESTURI", f"{url}/pipelines")
    monkeypatch.setenv("SYSTEM_ACCESSTOKEN", "job-access-token")
    credential = make_credential(real_cloud)
    assert isinstance(credential.credentials[0], AzurePipelinesCredential)  # type: ignore[attr-defined]
    clients = AzureClients(real_cloud, credential=credential)
    assert clients.resource.resource_groups.get(sandbox.resource_group).name
    asked = pipelines.asked[0]
    assert asked["auth"] == "Bearer job-access-token"
    assert asked["serviceConnectionId"] == CONNECTION_ID and asked["api-version"] == "7.1"
    credential.get_token(real_cloud.batch_scope)
    assert pipelines.given == 2


def test_a_reader_plans_from_a_github_pull_request(
    sandbox: Connection,
    admin: SandboxAdmin,
    runner: tuple[str, dict[str, Issuer]],
    sandbox_folder: Path,
    tmp_path: Path,
) -> None:
    """`plan` as a CI plan job runs it: a reader's identity, signed in with the pull
    request's ID token, the sandbox reached as a real cloud is (a cloud profile)."""
    url, issuers = runner
    github = issuers["github"] = Issuer(PULL, GITHUB_ISSUER)
    reader = federated_principal(admin, sandbox, github, PULL)
    folder = tmp_path / "specs"
    shutil.copytree(REPO / "specs", folder)
    cloud = (
        "cloud:\n"
        "  name: sandbox as a cloud\n"
        f"  arm_endpoint: {sandbox.arm_endpoint}\n"
        f"  authority_host: {sandbox.authority_host}\n"
        f"  ca_bundle: {sandbox.ca_bundle}\n"
        f"subscription: {sandbox.subscription_id}\n"
    )
    text = (folder / "quickstart.yaml").read_text().replace("name: quickstart", "name: readerplan")
    spec = folder / "readerplan.yaml"
    spec.write_text(re.sub(r"^cloud: .*\n", cloud, text, flags=re.M))
    env = {
        **ci_env(sandbox_folder),
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{url}/github?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token",
        "AZURE_CLIENT_ID": reader["clientId"],
        "AZURE_TENANT_ID": sandbox.tenant_id,
    }
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"):
        env.pop(name, None)
    planned = cli(tmp_path, env, "plan", str(spec), "--format", "markdown")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "| + | `capture.version` | create |" in planned.stdout
    assert (
        "> **preflight:** WARN permissions: the identity that ran this plan may not apply it: "
        f"it lacks write access on resource group {sandbox.resource_group}"
    ) in planned.stdout
    assert github.given >= 1
    # The same identity may not apply: apply's preflight fails before anything is made.
    applied = cli(tmp_path, env, "apply", str(spec), "--yes")
    assert applied.returncode == 1
    assert "FAIL permissions: on resource group" in applied.stderr
    assert "assign the built-in role 'Contributor'" in applied.stderr
