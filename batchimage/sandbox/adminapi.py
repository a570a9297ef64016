"""The admin endpoint (`/_sandbox/...`): health, request log, counters, faults, clock,
state dump, reset, Key Vault secrets, and the processes a sandbox started for callers
lives for (owners). Every admin route but health needs the header `x-sandbox-key: <client
secret from the connection file>`; `batchimage.sandbox.admin` is the client."""

from __future__ import annotations

import hmac
import os
from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.config import apply_mapping
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.errors import SandboxError
from batchimage.sandbox.faults import injector
from batchimage.sandbox.routing import Route

ADMIN = "/_sandbox"
VERSION = 1


def check_admin(call: Call) -> None:
    key = call.headers.get("x-sandbox-key", "")
    if not hmac.compare_digest(key, call.world.identity.client_secret):
        raise ApiError(
            401, "AuthenticationFailed", "The admin endpoint needs the x-sandbox-key header."
        )


def health(call: Call) -> Reply:
    return Reply(
        200,
        {
            "status": "ok",
            "pid": os.getpid(),
            "version": VERSION,
            "tenant": call.world.identity.tenant_id,
        },
    )


def cloud_metadata(call: Call) -> Reply:
    """`/metadata/endpoints`, as Azure and Azure Stack Hub publish their endpoints."""
    base = call.world.base_url
    cloud = {
        "name": "BatchimageSandbox",
        "resourceManager": f"{base}/",
        "authentication": {
            "loginEndpoint": f"{base}/",
            "audiences": [base],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {"storage": "127.0.0.1"},
        "batch": "https://batch.core.windows.net/",
    }
    if (call.api_version or "") >= "2022-09-01":
        return Reply(200, [cloud])
    return Reply(200, cloud)


def requests(call: Call) -> Reply:
    assert call.world.log is not None
    return Reply(200, {"value": call.world.log.since(int(call.arg("since", "0") or 0))})


def counters(call: Call) -> Reply:
    assert call.world.log is not None
    return Reply(200, call.world.log.counters())


def reset_counters(call: Call) -> Reply:
    assert call.world.log is not None
    call.world.log.reset()
    return Reply(204, None)


def get_faults(call: Call) -> Reply:
    return Reply(200, injector(call.world).to_json())


def put_faults(call: Call) -> Reply:
    body = call.json_object()
    try:
        injector(call.world).replace(list(body.get("rules", [])), body.get("seed"))
    except SandboxError as exc:
        raise ApiError(400, "InvalidFaultRule", str(exc)) from exc
    return Reply(200, injector(call.world).to_json())


def clear_faults(call: Call) -> Reply:
    injector(call.world).replace([])
    return Reply(204, None)


def clock(call: Call) -> Reply:
    world = call.world
    return Reply(
        200,
        {
            "now": world.clock.now(),
            "scale": world.clock.scale,
            "offset": world.clock.offset,
            "config": world.config.to_json(),
            "timers": len(world.store.table("timers")),
        },
    )


def advance(call: Call) -> Reply:
    """Move simulated time forward by `seconds` simulated seconds (due timers then fire)."""
    seconds = float(call.json_object().get("seconds", 0))
    if seconds < 0:
        raise ApiError(400, "InvalidValue", "Time only moves forward.")
    call.world.clock.offset += call.world.clock.real(seconds)
    call.store.meta()["clock_offset"] = call.world.clock.offset
    call.store.touch()
    return clock(call)


def put_config(call: Call) -> Reply:
    """Change settings at run time (time_scale, durations, poll_interval, faults, seed)."""
    body = call.json_object()
    try:
        apply_mapping(call.world.config, body, "admin config")
    except (SandboxError, ValueError, TypeError) as exc:
        raise ApiError(400, "InvalidConfig", str(exc)) from exc
    call.world.clock.scale = call.world.config.time_scale
    if "faults" in body or "seed" in body:
        injector(call.world).replace(call.world.config.faults, call.world.config.seed)
    return clock(call)


def dump(call: Call) -> Reply:
    """The whole stored world (for debugging and white-box assertions in tests)."""
    return Reply(200, call.store.data)


def reset(call: Call) -> Reply:
    """Forget everything (blobs too), fill ARM's request buckets again and seed a fresh
    world (identity and endpoints stay)."""
    from batchimage.sandbox.seed import seed_world

    call.store.clear()
    call.world.clock.offset = 0.0
    if call.world.limits is not None:
        call.world.limits.reset()
    seed_world(call.world)
    for hook in call.world.on_reset:
        hook(call.world)
    assert call.world.log is not None
    call.world.log.reset()
    return Reply(204, None)


def add_subscription(call: Call) -> Reply:
    """Make another subscription known (for rehearsals of specs naming their own)."""
    from batchimage.sandbox.services.resources import models

    body: dict[str, Any] = call.json_object()
    sub = str(body.get("subscriptionId", ""))
    if not sub:
        raise ApiError(400, "InvalidValue", "subscriptionId is required.")
    models.add_subscription(
        call.world, sub, str(body.get("displayName", sub)), bool(body.get("registered", True))
    )
    return Reply(200, arm.subscriptions(call.world)[sub.lower()])


def provision(call: Call) -> Reply:
    """Create a rehearsal's prerequisites: `{"subscriptionId", "location", "resources":
    [{"kind", "name", "group"?, ...}]}`; kinds come from the services' provisioners."""
    from batchimage.sandbox.services import load_services

    body = call.json_object()
    sub = str(body.get("subscriptionId") or call.world.identity.subscription_id)
    location = str(body.get("location") or call.world.identity.location)
    kinds = {k: fn for service in load_services() for k, fn in service.provisioners.items()}
    ids = []
    for raw in body.get("resources", []):
        item = {"subscription": sub, "location": location, **dict(raw)}
        kind = item.get("kind")
        if kind not in kinds:
            raise ApiError(400, "InvalidValue", f"unknown kind {kind!r}; known: {sorted(kinds)}")
        if item.get("group") and kind != "resource_group":
            kinds["resource_group"](call.world, {**item, "name": item["group"]})
        ids.append(kinds[kind](call.world, item))
    return Reply(200, {"ids": ids})


def add_owner(call: Call) -> Reply:
    """Keep a sandbox started for callers running while process `pid` runs too; 409 once it
    is stopping (the caller then starts a new one). A sandbox served by hand runs anyway."""
    owners = call.world.owners
    if owners is None:
        return Reply(200, {"tied": False})
    pid = _pid(call.json_object().get("pid"))
    if not owners.add(pid):
        raise ApiError(409, "Conflict", "The sandbox is stopping; start a new one.")
    return Reply(200, {"tied": True, "owners": owners.pids()})


def get_owners(call: Call) -> Reply:
    """The processes the sandbox lives for (those still running), and whether it is stopping."""
    owners = call.world.owners
    if owners is None:
        return Reply(200, {"tied": False, "stopping": False, "owners": []})
    stopping = not owners.keep()
    return Reply(200, {"tied": True, "stopping": stopping, "owners": owners.pids()})


def remove_owner(call: Call) -> Reply:
    """Process `pid` no longer needs the sandbox; it stops at once if nobody else does."""
    owners = call.world.owners
    if owners is None:
        return Reply(200, {"tied": False, "stopping": False})
    stopping = owners.leave(_pid(call.params["pid"]))
    return Reply(200, {"tied": True, "stopping": stopping})


def set_secret(call: Call) -> Reply:
    """Add a version of a Key Vault secret (`{"value", "grant"}`; the vault springs into
    existence with its first secret; `grant` (default true): the sandbox's own principal gets
    Key Vault Secrets User on the vault); answers `{"version"}`. The value is never logged."""
    from batchimage.sandbox.services.authorization import models as access_models
    from batchimage.sandbox.services.keyvault import access, models

    body = call.json_object()
    value = body.get("value")
    if not isinstance(value, str):
        raise ApiError(400, "InvalidValue", "value must be a string.")
    vault = call.params["vault"]
    try:
        version = models.set_secret(call.world, vault, call.params["name"], value)
    except ValueError as exc:
        raise ApiError(400, "InvalidValue", str(exc)) from exc
    if body.get("grant", True):
        principal = access_models.seeded_principal(call.world)
        access_models.assign(
            call.world, principal, access.READER_ROLE, access.vault_id(call.world, vault)
        )
    return Reply(200, {"version": version})


def delete_secret(call: Call) -> Reply:
    """Forget a Key Vault secret, every version (idempotent; the vault stays)."""
    from batchimage.sandbox.services.keyvault import models

    models.delete_secret(call.world, call.params["vault"], call.params["name"])
    return Reply(204, None)


def _pid(value: Any) -> int:
    try:
        pid = int(value)
    except (TypeError, ValueError):
        pid = 0
    if pid <= 0:
        raise ApiError(400, "InvalidValue", f"pid must be a process id, got {value!r}.")
    return pid


def routes() -> list[Route]:
    def admin(method: str, path: str, fn: Any, name: str) -> Route:
        return Route(method, ADMIN + path, fn, name, plane="admin")

    return [
        Route("GET", ADMIN + "/health", health, "Health", plane="public"),
        Route("GET", "/metadata/endpoints", cloud_metadata, "Metadata_Endpoints", plane="public"),
        admin("GET", "/requests", requests, "Admin_Requests"),
        admin("GET", "/counters", counters, "Admin_Counters"),
        admin("DELETE", "/counters", reset_counters, "Admin_ResetCounters"),
        admin("GET", "/faults", get_faults, "Admin_GetFaults"),
        admin("PUT", "/faults", put_faults, "Admin_PutFaults"),
        admin("DELETE", "/faults", clear_faults, "Admin_ClearFaults"),
        admin("GET", "/clock", clock, "Admin_Clock"),
        admin("POST", "/clock/advance", advance, "Admin_AdvanceClock"),
        admin("PATCH", "/config", put_config, "Admin_Config"),
        admin("GET", "/state", dump, "Admin_State"),
        admin("POST", "/reset", reset, "Admin_Reset"),
        admin("POST", "/subscriptions", add_subscription, "Admin_AddSubscription"),
        admin("POST", "/provision", provision, "Admin_Provision"),
        admin("GET", "/owners", get_owners, "Admin_Owners"),
        admin("POST", "/owners", add_owner, "Admin_AddOwner"),
        admin("DELETE", "/owners/{pid}", remove_owner, "Admin_RemoveOwner"),
        admin("PUT", "/keyvault/{vault}/secrets/{name}", set_secret, "Admin_SetSecret"),
        admin("DELETE", "/keyvault/{vault}/secrets/{name}", delete_secret, "Admin_DeleteSecret"),
    ]
