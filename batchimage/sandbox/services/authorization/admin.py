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


def add_federated_credential(call: Call) -> Reply:
    """`{"issuer", "subject", "jwks", "audiences"?}` -> the principal's new federated
    credential (the issuer's keys given here: the sandbox reads no issuer's discovery)."""
    from batchimage.sandbox.federation import add_federated_credential as add

    body = call.json_object()
    record = models.principals(call.world).get(call.params["objectId"])
    if record is None:
        raise ApiError(404, "NotFound", f"no principal {call.params['objectId']}")
    missing = [k for k in ("issuer", "subject", "jwks") if not body.get(k)]
    if missing:
        raise ApiError(400, "InvalidValue", f"missing {', '.join(missing)}")
    try:
        found = add(
            call.world, record, body["issuer"], body["subject"], body["jwks"], body.get("audiences")
        )
    except ValueError as exc:
        raise ApiError(400, "InvalidValue", str(exc)) from exc
    return Reply(200, found)
