"""The sandbox's services: one package per Azure API, registered in `SERVICE_MODULES`.

How to add a service (e.g. Microsoft.Compute, or the Batch data plane):

1. Create `batchimage/sandbox/services/<name>/` with, moto-style:
   - `models.py`    state and rules: functions over `World` and the store
     (`world.store.table("<name>")`, or ARM resources via `batchimage.sandbox.arm`), raising
     `batchimage.sandbox.apierrors.ApiError` with Azure's real codes. Slow transitions are
     timers: `batchimage.sandbox.clock.schedule(world, seconds, "<name>.<event>", args)`
     with the action registered by `@clock.action("<name>.<event>")` (names are persisted;
     keep them stable). Simulated durations come from `world.config.duration("<key>")`.
   - `responses.py` wire format: handlers `fn(call: Call) -> Reply` that parse
     `call.json_object()` / `call.params` / `call.arg(...)` and render JSON. LROs use
     `batchimage.sandbox.lro.start(...)` + `lro.headers(...)` / `lro.accepted(...)`.
   - `urls.py` routing: a `ROUTES: list[Route]` of `Route(method, pattern, handler,
     operation, plane=...)`; patterns use `{name}` placeholders and match
     case-insensitively. `plane="arm"` (default: Bearer token + api-version required, ARM
     error shape), `plane="batch"` (Bearer token, Batch OData error shape) or
     `plane="keyvault"` (Key Vault's challenge and audience, `{"error"}` shape; the app
     drops the connection to a vault that does not exist).
     Tracked ARM resources can use `batchimage.sandbox.arm.ResourceType(...).routes()`.
   - `__init__.py`  `SERVICE = Service(name, routes=ROUTES, seed=..., start=...)`.
   A large service makes `models` and `responses` packages with one module per resource
   kind (`compute/models/vms.py`, `compute/responses/vms.py`, ...); `urls.py` stays one.
2. Add the package's module path to `SERVICE_MODULES` below: that one line is the whole
   registration. Routes are tried in registration order, first match wins.
3. Add conformance cases for your examples in `tests/sandbox/conformance_cases.py` and
   SDK-driven tests in `tests/sandbox/test_<name>.py` using the `sandbox` fixtures.

`seed(world)` puts the service's part of a fresh sandbox into the store (called once, in
registration order, when the world is empty). `start(world)` runs at every server start
(e.g. to add `world.on_change` hooks). `provisioners` maps a kind (e.g. "gallery") to
`fn(world, item) -> resource id` that makes an existing-prerequisite for a rehearsal
(`POST /_sandbox/provision`, `SandboxAdmin.provision`): idempotent, Succeeded at once,
in `item["subscription"]` / `item["location"]` / `item["group"]`, named `item["name"]`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchimage.sandbox.context import World
from batchimage.sandbox.routing import Route

SERVICE_MODULES: tuple[str, ...] = (
    "batchimage.sandbox.services.authorization",
    "batchimage.sandbox.services.resources",
    "batchimage.sandbox.services.network",
    "batchimage.sandbox.services.storage",
    "batchimage.sandbox.services.compute",
    "batchimage.sandbox.services.batch_management",
    "batchimage.sandbox.services.batch_data",
    "batchimage.sandbox.services.keyvault",
)


@dataclass
class Service:
    """One API the sandbox serves: its routes and its part of the world."""

    name: str
    routes: list[Route] = field(default_factory=list)
    seed: Callable[[World], None] | None = None
    start: Callable[[World], None] | None = None
    provisioners: dict[str, Callable[[World, dict[str, Any]], str]] = field(default_factory=dict)


def load_services() -> list[Service]:
    """Import every registered service package and return their `SERVICE` objects."""
    services = []
    for module_name in SERVICE_MODULES:
        module = importlib.import_module(module_name)
        services.append(module.SERVICE)
    return services
