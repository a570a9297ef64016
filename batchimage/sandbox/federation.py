"""Entra ID's workload identity federation, the sandbox way: a principal's federated
identity credentials (issuer, subject, audiences) and the checks of a client assertion
sent to the token endpoint in their place of a secret.

A CI runner (GitHub Actions, Azure Pipelines) or a Kubernetes service account gets an ID
token from its own issuer and sends it as `client_assertion` with
`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`. Entra ID
takes it when one federated credential of the application names exactly (case-sensitive)
its `iss` and `sub` and lists its `aud`, its signature verifies with the issuer's keys
(Entra reads them from the issuer's OpenID discovery document; the sandbox is given them
with the credential), and it has not expired. Sources and codes: docs/azure-behaviours.md,
"Access: roles and token audiences".

    add_federated_credential(world, object_id, issuer, subject, jwks)
    check_assertion(world, client, assertion)     # ApiError, or the assertion's claims
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import World

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # the default audience of a credential
MAX_CREDENTIALS = 20  # Entra ID's limit per application or managed identity


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def add_federated_credential(
    world: World,
    record: dict[str, Any],
    issuer: str,
    subject: str,
    jwks: dict[str, Any],
    audiences: list[str] | None = None,
) -> dict[str, Any]:
    """Add a federated credential to principal `record` (at most 20); returns it."""
    credentials: list[dict[str, Any]] = record.setdefault("federatedCredentials", [])
    if len(credentials) >= MAX_CREDENTIALS:
        raise ValueError(f"a principal has at most {MAX_CREDENTIALS} federated credentials")
    if not issuer.startswith("https://"):
        raise ValueError("a federated credential's issuer is an https:// URL")
    if not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError("jwks must be a JSON Web Key Set with at least one key")
    credential = {
        "issuer": issuer,
        "subject": subject,
        "audiences": list(audiences or [EXCHANGE_AUDIENCE]),
        "jwks": jwks,
    }
    credentials.append(credential)
    world.store.touch()
    return credential


def _invalid_signature() -> ApiError:
    return ApiError(
        401,
        "invalid_client",
        "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key was "
        "not found.]",
    )


def _parts(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """The header, claims, signed bytes and signature of a compact JWT."""
    pieces = assertion.split(".")
    if len(pieces) != 3:
        raise _invalid_signature()
    try:
        header = json.loads(_unb64(pieces[0]))
        claims = json.loads(_unb64(pieces[1]))
        signature = _unb64(pieces[2])
    except ValueError as exc:
        raise _invalid_signature() from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _invalid_signature()
    return header, claims, f"{pieces[0]}.{pieces[1]}".encode(), signature


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    return [str(a) for a in aud] if isinstance(aud, list) else [str(aud or "")]


def _verifies(jwks: dict[str, Any], header: dict[str, Any], signed: bytes, sig: bytes) -> bool:
    """Whether an RS256 signature verifies with a key of `jwks` (the header's `kid` when
    it names one)."""
    if header.get("alg") != "RS256":
        return False
    for key in jwks.get("keys", []):
        if key.get("kty") != "RSA" or ("kid" in header and key.get("kid") != header["kid"]):
            continue
        numbers = rsa.RSAPublicNumbers(
            int.from_bytes(_unb64(key["e"]), "big"), int.from_bytes(_unb64(key["n"]), "big")
        )
        try:
            numbers.public_key().verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return True
    return False


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def check_assertion(world: World, client: dict[str, Any], assertion: str) -> dict[str, Any]:
    """The claims of `assertion` when a federated credential of `client` takes it; else
    the ApiError Entra ID answers."""
    header, claims, signed, signature = _parts(assertion)
    issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
    audiences = _audiences(claims)
    match = next(
        (
            c
            for c in client.get("federatedCredentials", [])
            if c["issuer"] == issuer
            and c["subject"] == subject
            and any(a in c["audiences"] for a in audiences)
        ),
        None,
    )
    if match is None:
        raise ApiError(
            400,
            "invalid_request",
            "AADSTS70021: No matching federated identity record found for presented "
            f"assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. "
            f"Assertion Audience: '{audiences[0]}'. "
            "https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        )
    if not _verifies(match["jwks"], header, signed, signature):
        raise _invalid_signature()
    now = time.time()
    expiry = claims.get("exp")
    starts = claims.get("nbf", claims.get("iat", now))
    if not isinstance(expiry, int | float) or expiry <= now or float(starts) > now:
        raise ApiError(
            401,
            "invalid_client",
            "AADSTS700024: Client assertion is not within its valid time range. Current "
            f"time: {_stamp(now)}, assertion valid from {_stamp(float(starts))}, expiry time "
            f"of assertion {_stamp(float(expiry or 0))}.",
        )
    return claims
