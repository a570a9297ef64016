"""Microsoft.Authorization wire format: the caller's permissions at a resource group or a
resource (Permissions_ListForResourceGroup / _ListForResource, api-version 2022-04-01:
`{"value": [{"actions", "notActions", "dataActions", "notDataActions"}]}`, one block per
role the caller holds at or above the scope), and the admin endpoint's principals and
role assignments."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox import arm
from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.authorization import models

_KEYS = ("actions", "notActions", "dataActions", "notDataActions")


def _permissions_reply(call: Call, scope: str) -> Reply:
    blocks = models.permissions(call.world, str(call.claims.get("oid", "")), scope)
    return Reply(200, {"value": [{k: list(b.get(k, [])) for k in _KEYS} for b in blocks]})


def list_for_group(call: Call) -> Reply:
    """Permissions_ListForResourceGroup (404 ResourceGroupNotFound for a missing group)."""
    group = arm.require_group(call)
    return _permissions_reply(call, group["id"])


def list_for_resource(call: Call) -> Reply:
    """Permissions_ListForResource: the scope is the resource id in the path (an empty
    parentResourcePath leaves `//` in it, as the SDK sends it)."""
    group = arm.require_group(call)
    resource = "/".join(part for part in call.params["resource"].split("/") if part)
    return _permissions_reply(call, f"{group['id']}/providers/{resource}")


# -- admin --------------------------------------------------------------------------------


def add_principal(call: Call) -> Reply:
    """`{"name", "roles"?: [{"role", "scope"}]}` -> the principal with its client secret."""
    body = call.json_object()
    roles = body.get("roles")
    if roles is not None and not isinstance(roles, list):
        raise ApiError(400, "InvalidValue", "roles must be a list of {role, scope}")
    record = models.add_principal(call.world, str(body.get("name") or "principal"), roles)
    return Reply(200, record)


def list_assignments(call: Call) -> Reply:
    """Every role assignment, or those of `?principalId=`."""
    who = call.arg("principalId")
    found: list[dict[str, Any]] = [
        a
        for a in models.assignments(call.world).values()
        if who is None or a["properties"]["principalId"] == who
    ]
    return Reply(200, {"value": found})


def add_assignment(call: Call) -> Reply:
    """`{"principalId", "role", "scope"}` -> the assignment (the same triple: the same one)."""
    body = call.json_object()
    missing = [k for k in ("principalId", "role", "scope") if not body.get(k)]
    if missing:
        raise ApiError(400, "InvalidValue", f"missing {', '.join(missing)}")
    record = models.assign(call.world, body["principalId"], body["role"], body["scope"])
    return Reply(200, record)


def delete_assignment(call: Call) -> Reply:
    if not models.unassign(call.world, call.params["name"]):
        raise ApiError(404, "NotFound", f"no role assignment {call.params['name']}")
    return Reply(204, None)
