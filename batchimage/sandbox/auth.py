"""Entra ID, the sandbox way: OpenID discovery and a client-credentials token endpoint for
the sandbox's service principals, and bearer-token checks on every ARM/Batch request.

azure-identity's `ClientSecretCredential(tenant, client, secret, authority=<sandbox URL>,
disable_instance_discovery=True)` (through MSAL) GETs
`/<tenant>/v2.0/.well-known/openid-configuration`, then POSTs the form
`grant_type=client_credentials&client_id&client_secret&scope` to the `token_endpoint` named
there (a federated sign-in sends `client_assertion` and its type instead of the secret:
`federation.py`). Tokens are HMAC-signed JWTs (key in the sandbox folder), valid one hour, so they
survive a sandbox restart. Like Entra ID's v1.0 access tokens for Azure services, a token's
`aud` is the scope's resource (the scope without its last `/` part: `https://batch.core.
windows.net//.default` -> `https://batch.core.windows.net/`) and its `iss` is
`https://sts.windows.net/<tenant>/` (which Azurite's `--oauth basic` check also requires).

Each plane accepts only its own audience, as Azure does: ARM the sandbox's URL (with or
without the trailing slash; 401 InvalidAuthenticationTokenAudience), Batch exactly
`https://batch.core.windows.net/` (401 AuthenticationFailed with an AuthenticationErrorDetail),
Key Vault exactly `https://vault.azure.net` (`check_keyvault`: 401 Unauthorized, AKV10022;
a request without a token gets Key Vault's challenge, AKV10000, naming the sandbox's
authority and the resource to ask a token for); blob requests go to Azurite, which checks
its storage audiences itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, Reply, World
from batchimage.sandbox.federation import ASSERTION_TYPE, check_assertion
from batchimage.sandbox.routing import Route

TOKEN_LIFETIME = 3600
BATCH_AUDIENCE = "https://batch.core.windows.net/"
KEYVAULT_AUDIENCE = "https://vault.azure.net"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(world: World, audience: str, client_id: str = "", object_id: str = "") -> str:
    """A signed access token for a service principal (default: the sandbox's own)."""
    ident = world.identity
    client_id = client_id or ident.client_id
    object_id = object_id or client_id
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{ident.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME,
        "tid": ident.tenant_id,
        "appid": client_id,
        "oid": object_id,
        "sub": object_id,
        "uti": uuid.uuid4().hex,
        "ver": "1.0",
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(ident.signing_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def token_claims(world: World, token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token issued by this sandbox, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}"
    want = hmac.new(world.identity.signing_key.encode(), signing_input.encode(), hashlib.sha256)
    try:
        if not hmac.compare_digest(want.digest(), _unb64(parts[2])):
            return None
        claims: dict[str, Any] = json.loads(_unb64(parts[1]))
    except ValueError:
        return None
    if claims.get("exp", 0) < time.time() or claims.get("tid") != world.identity.tenant_id:
        return None
    return claims


def _challenge(world: World, description: str) -> dict[str, str]:
    authority = f"{world.base_url}/{world.identity.tenant_id}"
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{authority}", error="invalid_token", '
        f'error_description="{description}"'
    }


def check_request(world: World, headers: dict[str, str], plane: str) -> dict[str, Any]:
    """Require `Authorization: Bearer <sandbox token for this plane>`; its claims, or 401 in
    the plane's error shape."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if not auth:
        raise ApiError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            headers=_challenge(
                world, "The authentication failed because of missing 'Authorization' header."
            ),
        )
    if scheme.lower() == "sharedkey":
        raise ApiError(
            401,
            "AuthenticationFailed",
            "Shared key authentication is not accepted: the sandbox, like Azure for Batch "
            "pools from Azure Compute Gallery images, requires Microsoft Entra ID tokens "
            "(Authorization: Bearer).",
            headers=_challenge(world, "Shared key authentication is disabled."),
        )
    claims = token_claims(world, value.strip()) if scheme.lower() == "bearer" else None
    if claims is None:
        raise ApiError(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid."
            if scheme.lower() == "bearer"
            else "The 'Authorization' header is not a Bearer token.",
            headers=_challenge(world, "The access token is invalid or expired."),
        )
    _check_audience(world, str(claims.get("aud", "")), plane)
    return claims


def _check_audience(world: World, audience: str, plane: str) -> None:
    """401 when the token was issued for another service than `plane`'s."""
    if plane == "batch" and audience != BATCH_AUDIENCE:
        raise ApiError(
            401,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization "
            "header is formed correctly.",
            values=[
                {
                    "key": "AuthenticationErrorDetail",
                    "value": f"The access token has been obtained from wrong audience or "
                    f"resource '{audience}'. It should exactly match (including forward slash) "
                    f"with one of the allowed audiences '{BATCH_AUDIENCE}'",
                }
            ],
        )
    allowed = (world.base_url + "/", world.base_url)
    if plane == "arm" and audience not in allowed:
        message = (
            f"The access token has been obtained for wrong audience or resource '{audience}'. "
            "It should exactly match with one of the allowed audiences "
            + ",".join(f"'{a}'" for a in allowed)
            + "."
        )
        raise ApiError(
            401,
            "InvalidAuthenticationTokenAudience",
            message,
            headers=_challenge(world, message.replace('"', "'")),
        )


def check_keyvault(world: World, headers: dict[str, str]) -> dict[str, Any]:
    """Key Vault's check: a sandbox token for `https://vault.azure.net`; its claims, or 401
    Unauthorized with the challenge (`WWW-Authenticate: Bearer authorization, resource`)."""
    challenge = {
        "WWW-Authenticate": f'Bearer authorization="{world.base_url}/{world.identity.tenant_id}", '
        f'resource="{KEYVAULT_AUDIENCE}"'
    }
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
            headers=challenge,
        )
    claims = token_claims(world, value.strip())
    if claims is None:
        raise ApiError(
            401,
            "Unauthorized",
            "AKV10046: Unable to resolve the key used for signature validation.",
            headers=challenge,
        )
    audience = str(claims.get("aud", ""))
    if audience != KEYVAULT_AUDIENCE:
        raise ApiError(
            401,
            "Unauthorized",
            f"AKV10022: Invalid audience. Expected {KEYVAULT_AUDIENCE}, found: {audience}.",
            headers=challenge,
        )
    return claims


def _tenant(call: Call) -> str:
    tenant = call.params["tenant"]
    if tenant.lower() not in (call.world.identity.tenant_id.lower(), "organizations", "common"):
        raise ApiError(
            400,
            "invalid_tenant",
            f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct "
            "tenant ID and are signing into the correct cloud.",
        )
    return call.world.identity.tenant_id


def openid_configuration(call: Call) -> Reply:
    """The OpenID Connect discovery document MSAL reads to find the token endpoint."""
    tenant = _tenant(call)
    base = f"{call.world.base_url}/{tenant}"
    return Reply(
        200,
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "batchimage.sandbox",
        },
    )


def token(call: Call) -> Reply:
    """Client-credentials grant for the sandbox's service principals: with their secret,
    or with a client assertion one of their federated credentials takes (`federation.py`)."""
    from batchimage.sandbox.services.authorization.models import client_of

    _tenant(call)
    form = {k: v[0] for k, v in parse_qs(call.body.decode(errors="replace")).items()}
    if form.get("grant_type") != "client_credentials":
        raise ApiError(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The sandbox supports only the client_credentials grant.",
        )
    client = client_of(call.world, form.get("client_id", ""))
    if client is None:
        raise ApiError(
            400,
            "unauthorized_client",
            f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found "
            "in the directory. Use the client id from the sandbox's connection file.",
        )
    if form.get("client_assertion_type") == ASSERTION_TYPE:
        check_assertion(call.world, client, form.get("client_assertion", ""))
    elif not hmac.compare_digest(form.get("client_secret", ""), client["clientSecret"]):
        raise ApiError(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
            "sent in the request is the client secret value.",
        )
    scope = form.get("scope", "").split(" ")[0]
    audience = scope.rsplit("/", 1)[0] if "/" in scope.split("://", 1)[-1] else scope
    token = issue_token(
        call.world, audience or call.world.base_url, client["clientId"], client["objectId"]
    )
    return Reply(
        200,
        {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token,
        },
    )


def routes() -> list[Route]:
    return [
        Route(
            "GET",
            "/{tenant}/v2.0/.well-known/openid-configuration",
            openid_configuration,
            "OpenIdConfiguration",
            plane="auth",
        ),
        Route("POST", "/{tenant}/oauth2/v2.0/token", token, "Token", plane="auth", write=False),
    ]
