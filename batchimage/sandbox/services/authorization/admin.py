"""The admin endpoint's access routes: principals and role assignments for tests and
rehearsals (the sandbox's own API, not Azure's: its errors are the admin plane's)."""

from __future__ import annotations

from typing import Any

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call, Reply
from batchimage.sandbox.services.authorization import models


def add_principal(call: Call) -> Reply:
    """`{"name", "roles"?: [{"role", "scope"}]}` -> the principal with its client secret."""
    body = call.json_object()
    roles = body.get("roles")
    if roles is not None and not isinstance(roles, list):
        raise ApiError(400, "InvalidValue", "roles must be a list of {role, scope}")
    try:
        record = models.add_principal(call.world, str(body.get("name") or "principal"), roles)
    except ValueError as exc:
        raise ApiError(400, "InvalidValue", str(exc)) from exc
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
    try:
        record = models.assign(call.world, body["principalId"], body["role"], body["scope"])
    except ValueError as exc:
        raise ApiError(400, "InvalidValue", str(exc)) from exc
    return Reply(200, record)


def delete_assignment(call: Call) -> Reply:
    if not models.unassign(call.world, call.params["name"]):
        raise ApiError(404, "NotFound", f"no role assignment {call.params['name']}")
    return Reply(204, None)
