"""Principals and role assignments: who may do what, at which scope.

    add_principal(world, "reader-sp")            # a new service principal (its secret too)
    assign(world, object_id, "Reader", scope)    # a role assignment (idempotent)
    permissions(world, object_id, scope)         # the permission blocks that apply there
    allowed(world, object_id, scope, action, data=False)

The sandbox's own service principal (the connection file's client) is seeded as a new
Azure user typically is: Owner of the subscription, which grants every action and no data
action, plus Azure Batch Data Contributor on the seeded Batch account, so the quickstart
(and any spec's smoke test on that account) runs; an account a rehearsal provisions gets
the same grant. A principal added through the admin endpoint starts as Owner of the
sandbox's subscription unless told otherwise. An assignment covers its scope and every
scope below it.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from batchimage.core.rbac import block_grants, built_in_roles, find_role
from batchimage.sandbox import arm, seed
from batchimage.sandbox.context import World

OWNER = "Owner"
BATCH_DATA_CONTRIBUTOR = "Azure Batch Data Contributor"
SEEDED_FLAG = "access_seeded"
DEFINITION_PREFIX = "/providers/Microsoft.Authorization/roleDefinitions/"
_NAMESPACE = uuid.UUID("5b8e1d0c-4a61-4f4e-9a57-5a1d1f0b7c11")


def principals(world: World) -> dict[str, Any]:
    """Principals added through the admin endpoint, keyed by object id."""
    return world.store.table("principals")


def assignments(world: World) -> dict[str, Any]:
    """Role assignments, keyed by their name (a GUID)."""
    return world.store.table("role_assignments")


def seeded_principal(world: World) -> str:
    """The object id of the sandbox's own service principal (its client id)."""
    return world.identity.client_id


def client_of(world: World, client_id: str) -> dict[str, Any] | None:
    """`{"clientId", "clientSecret", "objectId"}` of a principal that may get tokens."""
    ident = world.identity
    if client_id == ident.client_id:
        return {"clientId": client_id, "clientSecret": ident.client_secret, "objectId": client_id}
    for record in principals(world).values():
        if record["clientId"] == client_id:
            found: dict[str, Any] = record
            return found
    return None


def add_principal(
    world: World, name: str, roles: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """A new service principal; `roles` (`[{"role", "scope"}]`) default to Owner of the
    sandbox's subscription, as for a user who created it."""
    record = {
        "displayName": name,
        "objectId": str(uuid.uuid4()),
        "clientId": str(uuid.uuid4()),
        "clientSecret": secrets.token_urlsafe(24),
        "tenantId": world.identity.tenant_id,
    }
    principals(world)[record["objectId"]] = record
    world.store.touch()
    wanted = roles if roles is not None else [{"role": OWNER, "scope": _subscription(world)}]
    for item in wanted:
        assign(world, record["objectId"], item["role"], item["scope"])
    return record


def assign(world: World, principal: str, role_name: str, scope: str) -> dict[str, Any]:
    """Give `principal` the role at `scope` (the same triple is one assignment)."""
    role = find_role(role_name)
    if role is None:
        known = ", ".join(r["roleName"] for r in built_in_roles())
        raise ValueError(f"unknown role {role_name!r}; known: {known}")
    scope = "/" + scope.strip("/")
    name = str(uuid.uuid5(_NAMESPACE, f"{principal}|{role['name']}|{scope}".lower()))
    record = {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": DEFINITION_PREFIX + role["name"],
            "principalId": principal,
            "scope": scope,
        },
        "roleName": role["roleName"],
    }
    assignments(world)[name] = record
    world.store.touch()
    return record


def unassign(world: World, name: str) -> bool:
    """Remove one assignment; False when there is none by that name."""
    gone = assignments(world).pop(name, None) is not None
    world.store.touch()
    return gone


def _covers(scope: str, target: str) -> bool:
    scope, target = scope.lower().rstrip("/"), target.lower().rstrip("/")
    return target == scope or target.startswith(scope + "/")


def permissions(world: World, principal: str, scope: str) -> list[dict[str, Any]]:
    """The permission blocks of `principal`'s roles assigned at or above `scope`."""
    out = []
    for record in assignments(world).values():
        props = record["properties"]
        if props["principalId"] != principal or not _covers(props["scope"], scope):
            continue
        role = find_role(props["roleDefinitionId"])
        if role is not None:
            out.extend(role["permissions"])
    return out


def allowed(world: World, principal: str, scope: str, action: str, *, data: bool = False) -> bool:
    """Whether `principal` may perform `action` (a data action when `data`) at `scope`."""
    return any(block_grants(p, action, data=data) for p in permissions(world, principal, scope))


def _subscription(world: World, subscription: str | None = None) -> str:
    return f"/subscriptions/{subscription or world.identity.subscription_id}"


def own_subscription(world: World, subscription: str) -> None:
    """The sandbox's principal owns a subscription it is given (seeded or added)."""
    assign(world, seeded_principal(world), OWNER, _subscription(world, subscription))


def grant_batch_data(world: World, account_id: str) -> None:
    """The sandbox's principal may run jobs on a Batch account it was given."""
    assign(world, seeded_principal(world), BATCH_DATA_CONTRIBUTOR, account_id)


def seed_defaults(world: World) -> None:
    """The seeded principal's roles (see the module docstring)."""
    world.store.meta()[SEEDED_FLAG] = True
    sub = world.identity.subscription_id
    own_subscription(world, sub)
    group, name = seed.RESOURCE_GROUP, seed.BATCH_ACCOUNT
    grant_batch_data(world, arm.resource_id(sub, group, "Microsoft.Batch", "batchAccounts", name))
