"""A small client for the sandbox's admin endpoint, for tests and benchmarks:
request log, counters (reads vs writes), fault rules, clock, state, reset, principals and
their role assignments, Marketplace versions published over time, Key Vault secrets; and for
`batchimage.sandbox.runtime`, the processes a sandbox started for callers lives for."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from batchimage.sandbox.connection import Connection
from batchimage.sandbox.errors import SandboxError


class SandboxAdmin:
    """Talks to `/_sandbox/...` of the sandbox described by `conn`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._context = ssl.create_default_context(cafile=conn.ca_bundle)

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.conn.arm_endpoint}/_sandbox{path}",
            data=data,
            method=method,
            headers={"x-sandbox-key": self.conn.client_secret, "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._context) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise SandboxError(
                f"sandbox admin {method} {path}: HTTP {exc.code} {exc.read()[:500]!r}"
            ) from exc
        except OSError as exc:
            raise SandboxError(f"sandbox admin {method} {path}: {exc}") from exc
        return json.loads(raw) if raw else None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Logged ARM/Batch/auth requests with sequence number > `since`."""
        result: list[dict[str, Any]] = self._call("GET", f"/requests?since={since}")["value"]
        return result

    def counters(self) -> dict[str, Any]:
        """`{"operations": {name: n}, "reads", "writes", "total", "faults", "seq"}`."""
        result: dict[str, Any] = self._call("GET", "/counters")
        return result

    def reset_counters(self) -> None:
        self._call("DELETE", "/counters")

    def set_faults(self, rules: list[dict[str, Any]], seed: int | None = None) -> dict[str, Any]:
        """Replace the fault rules (see `batchimage.sandbox.faults`)."""
        body: dict[str, Any] = {"rules": rules}
        if seed is not None:
            body["seed"] = seed
        result: dict[str, Any] = self._call("PUT", "/faults", body)
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def clock(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/clock")
        return result

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move simulated time forward by `seconds` (simulated); due timers fire."""
        result: dict[str, Any] = self._call("POST", "/clock/advance", {"seconds": seconds})
        return result

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change time_scale, durations, poll_interval, faults or seed at run time."""
        result: dict[str, Any] = self._call("PATCH", "/config", settings)
        return result

    def state(self) -> dict[str, Any]:
        """The whole stored world (tables of JSON records)."""
        result: dict[str, Any] = self._call("GET", "/state")
        return result

    def reset(self) -> None:
        """Forget everything and seed a fresh world."""
        self._call("POST", "/reset")

    def provision(
        self, subscription_id: str, location: str, resources: list[dict[str, Any]]
    ) -> list[str]:
        """Make a rehearsal's existing prerequisites exist (idempotent); returns their ids.

        Each item: `{"kind": "resource_group" | "storage_account" | "batch_account" |
        "subnet" | <kinds other services add>, "name", "group" (except groups), ...}`.
        """
        body = {"subscriptionId": subscription_id, "location": location, "resources": resources}
        result: list[str] = self._call("POST", "/provision", body)["ids"]
        return result

    def add_subscription(self, subscription_id: str, registered: bool = True) -> dict[str, Any]:
        body = {"subscriptionId": subscription_id, "registered": registered}
        result: dict[str, Any] = self._call("POST", "/subscriptions", body)
        return result

    def add_principal(self, name: str, roles: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """A new service principal (`clientId`, `clientSecret`, `objectId`); `roles`
        (`[{"role", "scope"}]`) default to Owner of the sandbox's subscription."""
        body: dict[str, Any] = {"name": name}
        if roles is not None:
            body["roles"] = roles
        result: dict[str, Any] = self._call("POST", "/principals", body)
        return result

    def add_federated_credential(
        self,
        object_id: str,
        issuer: str,
        subject: str,
        jwks: dict[str, Any],
        audiences: list[str] | None = None,
    ) -> dict[str, Any]:
        """Let principal `object_id` sign in with ID tokens of `issuer` for `subject`
        (audience default `api://AzureADTokenExchange`), signed by a key of `jwks`."""
        body: dict[str, Any] = {"issuer": issuer, "subject": subject, "jwks": jwks}
        if audiences is not None:
            body["audiences"] = audiences
        path = f"/principals/{object_id}/federated-credentials"
        result: dict[str, Any] = self._call("POST", path, body)
        return result

    def assign_role(self, principal_id: str, role: str, scope: str) -> dict[str, Any]:
        """Assign a built-in role (name or id) to a principal at a scope (idempotent)."""
        body = {"principalId": principal_id, "role": role, "scope": scope}
        result: dict[str, Any] = self._call("POST", "/role-assignments", body)
        return result

    def role_assignments(self, principal_id: str | None = None) -> list[dict[str, Any]]:
        query = f"?principalId={principal_id}" if principal_id else ""
        result: list[dict[str, Any]] = self._call("GET", f"/role-assignments{query}")["value"]
        return result

    def remove_role_assignment(self, name: str) -> None:
        self._call("DELETE", f"/role-assignments/{name}")

    def publish_image(
        self, publisher: str, offer: str, sku: str, version: str, *, after_s: float = 0
    ) -> dict[str, Any]:
        """Publish `version` of a catalogue Marketplace SKU (as its publisher releases one):
        listed, and `latest`, from `after_s` simulated seconds on; idempotent."""
        body = {
            "publisher": publisher,
            "offer": offer,
            "sku": sku,
            "version": version,
            "after_s": after_s,
        }
        result: dict[str, Any] = self._call("POST", "/marketplace/versions", body)
        return result

    def published_images(self) -> list[dict[str, Any]]:
        """Every version published with `publish_image` (`at`: listed from that sim time)."""
        result: list[dict[str, Any]] = self._call("GET", "/marketplace/versions")["value"]
        return result

    def withdraw_image(self, publisher: str, offer: str, sku: str, version: str) -> None:
        """Forget a version published with `publish_image` (the catalogue's own stay)."""
        path = "/".join(urllib.parse.quote(p, safe="") for p in (publisher, offer, sku, version))
        self._call("DELETE", f"/marketplace/versions/{path}")

    def deprecate_image(
        self,
        publisher: str,
        offer: str,
        sku: str,
        version: str,
        *,
        state: str = "ScheduledForDeprecation",
        scheduled: str | None = None,
        alternative: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Give a listed Marketplace version the deprecation status its publisher sets:
        `ScheduledForDeprecation` on `scheduled` (an ISO 8601 time; from then on it is
        `Deprecated`), `Deprecated`, or `Active` (cleared); `alternative` is
        `{"type": "Offer" | "Plan" | "None", "value"}`. Withdrawing the version clears it."""
        body: dict[str, Any] = {
            "publisher": publisher,
            "offer": offer,
            "sku": sku,
            "version": version,
            "imageState": state,
        }
        if scheduled is not None:
            body["scheduledDeprecationTime"] = scheduled
        if alternative is not None:
            body["alternativeOption"] = alternative
        result: dict[str, Any] = self._call("POST", "/marketplace/deprecations", body)
        return result

    def set_secret(self, vault: str, name: str, value: str, *, grant: bool = True) -> str:
        """Add a version of secret `name` in Key Vault `vault` (made with its first secret;
        its URL is `<arm_endpoint>/keyvault/<vault>`); `grant`: the sandbox's own principal
        may read the vault's secrets (Key Vault Secrets User on it). The new version id."""
        body = {"value": value, "grant": grant}
        result: dict[str, Any] = self._call("PUT", _secret_path(vault, name), body)
        return str(result["version"])

    def delete_secret(self, vault: str, name: str) -> None:
        """Forget secret `name` of Key Vault `vault`, every version (the vault stays)."""
        self._call("DELETE", _secret_path(vault, name))

    def owners(self) -> dict[str, Any]:
        """`{"tied", "stopping", "owners": [pid, ...]}`: who a sandbox started for callers
        lives for (the processes still running)."""
        result: dict[str, Any] = self._call("GET", "/owners")
        return result

    def add_owner(self, pid: int) -> bool:
        """Keep the sandbox running while process `pid` runs; False when it cannot be
        counted on (it is stopping, or does not answer)."""
        try:
            self._call("POST", "/owners", {"pid": pid}, timeout=5)
        except SandboxError:
            return False
        return True

    def remove_owner(self, pid: int) -> bool:
        """Process `pid` no longer needs the sandbox; True when the sandbox now stops."""
        result = self._call("DELETE", f"/owners/{pid}", timeout=5)
        return bool(result.get("stopping"))


def _secret_path(vault: str, name: str) -> str:
    """The admin path of a Key Vault secret."""
    quote = urllib.parse.quote
    return f"/keyvault/{quote(vault, safe='')}/secrets/{quote(name, safe='')}"
