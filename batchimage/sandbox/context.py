"""What a handler works with: the `World` (store, clock, config, identity, links to
Azurite), the `Call` (one parsed request), and the `Reply` it returns."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchimage.sandbox.apierrors import invalid_request_content
from batchimage.sandbox.clock import Clock
from batchimage.sandbox.config import SandboxConfig
from batchimage.sandbox.store import Store

if TYPE_CHECKING:
    from batchimage.sandbox.faults import FaultInjector
    from batchimage.sandbox.owners import Owners
    from batchimage.sandbox.ratelimit import Limits
    from batchimage.sandbox.requestlog import RequestLog
    from batchimage.sandbox.routing import Route


@dataclass(frozen=True)
class Identity:
    """Who the sandbox is: its tenant, subscription and the one service principal it accepts."""

    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    signing_key: str
    location: str = "eastus"


@dataclass
class World:
    """The sandbox's state and settings, shared by every request."""

    store: Store
    clock: Clock
    config: SandboxConfig
    identity: Identity
    base_url: str = ""
    blob_root: str = ""
    on_change: list[Callable[[World], None]] = field(default_factory=list)
    on_reset: list[Callable[[World], None]] = field(default_factory=list)
    # run on every authenticated request before its handler (e.g. role-based access)
    checks: list[Callable[[Call], None]] = field(default_factory=list)
    faults: FaultInjector | None = None
    log: RequestLog | None = None
    owners: Owners | None = None  # a sandbox started for callers: who it lives for
    limits: Limits | None = None  # ARM's request limits (`batchimage.sandbox.ratelimit`)

    def blob_endpoint(self, account: str) -> str:
        """The blob endpoint Azurite serves for storage account `account`."""
        return f"{self.blob_root}/{account}/"


@dataclass
class Reply:
    """A handler's answer: status, JSON body (or raw bytes, or None), extra headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


@dataclass
class Call:
    """One request, parsed: path parameters, query (case-insensitive names), headers, body."""

    world: World
    route: Route
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    request_id: str = ""
    claims: dict[str, Any] = field(default_factory=dict)  # the bearer token's, once checked

    def arg(self, name: str, default: str | None = None) -> str | None:
        """Query parameter `name` (case-insensitive)."""
        return self.query.get(name.lower(), default)

    @property
    def api_version(self) -> str | None:
        return self.arg("api-version")

    def json(self) -> Any:
        """The body as JSON (None when empty); 400 InvalidRequestContent when malformed."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise invalid_request_content(
                f"The request content was invalid and could not be deserialized: '{exc}'."
            ) from exc

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; 400 when missing or not an object."""
        body = self.json()
        if not isinstance(body, dict):
            raise invalid_request_content("The request content must be a JSON object.")
        return body

    @property
    def store(self) -> Store:
        return self.world.store

    @property
    def clock(self) -> Clock:
        return self.world.clock
