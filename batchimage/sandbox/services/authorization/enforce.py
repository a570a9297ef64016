"""Role-based access control on every request: ARM writes need their action, Batch data-plane
operations need theirs (pools: actions; jobs and tasks: data actions).

ARM names an operation's action from the request: `{namespace}/{type path}/write` for PUT
and PATCH, `/delete` for DELETE, `{namespace}/{type path}/{verb}/action` for a POST to
`.../{name}/{verb}` (e.g. `Microsoft.Compute/virtualMachines/deallocate/action`); groups
and subscriptions belong to `Microsoft.Resources`. A refusal is ARM's 403
AuthorizationFailed, worded as ARM words it; the Batch data plane answers its own 403
AuthorizationFailure. Reads on ARM are not checked.

A plane other than ARM says what an operation needs, and how it refuses, through
`register_plane(plane, need, refuse)`: `need(call)` returns `(scope, action,
is_data_action)` or None (nothing to check); `refuse(call)` is the plane's 403.
"""

from __future__ import annotations

from collections.abc import Callable

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.context import Call
from batchimage.sandbox.services.authorization.models import allowed

Need = tuple[str, str, bool]
PLANES: dict[str, tuple[Callable[[Call], Need | None], Callable[[Call], ApiError]]] = {}
_VERBS = {"PUT": "write", "PATCH": "write", "DELETE": "delete"}


def register_plane(
    plane: str, need: Callable[[Call], Need | None], refuse: Callable[[Call], ApiError]
) -> None:
    """What a request of `plane` needs and its refusal (a service registers them at start)."""
    PLANES[plane] = (need, refuse)


def arm_need(method: str, path: str) -> Need | None:
    """(scope, action, False) of an ARM write; None for reads and non-ARM paths."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return None
    segments = [s for s in path.split("/") if s]
    lowered = [s.lower() for s in segments]
    if not lowered or lowered[0] != "subscriptions":
        return None
    at = len(lowered) - 1 - lowered[::-1].index("providers") if "providers" in lowered else -1
    if 0 < at < len(segments) - 1:
        namespace, rest, base = segments[at + 1], segments[at + 2 :], segments[:at]
    else:
        namespace, rest, base = "Microsoft.Resources", segments, []
    if namespace.lower() == "microsoft.authorization":
        return None
    if len(rest) % 2 == 1:  # ".../{name}/{verb}" (or a namespace-level verb): an action
        action = "/".join([namespace, *rest[:-1:2], rest[-1], "action"])
        on = segments[:-1] if len(rest) > 1 else base
        return "/" + "/".join(on), action, False
    types = rest[0::2]
    action = "/".join([namespace, *types, _VERBS.get(method, "write")])
    return "/" + "/".join(segments), action, False


def authorization_failed(call: Call, scope: str, action: str) -> ApiError:
    """ARM's 403 for a principal without the action."""
    claims = call.claims
    return ApiError(
        403,
        "AuthorizationFailed",
        f"The client '{claims.get('appid', '')}' with object id '{claims.get('oid', '')}' does "
        f"not have authorization to perform action '{action}' over scope '{scope}' or the "
        "scope is invalid. If access was recently granted, please refresh your credentials.",
    )


def check(call: Call) -> None:
    """Refuse the request when its principal lacks what it needs (plane's own answer)."""
    plane = call.route.plane
    if plane == "arm":
        need = arm_need(call.method, call.path)
    elif plane in PLANES:
        need = PLANES[plane][0](call)
    else:
        return
    if need is None:
        return
    scope, action, data = need
    if allowed(call.world, str(call.claims.get("oid", "")), scope, action, data=data):
        return
    if plane == "arm":
        raise authorization_failed(call, scope, action)
    raise PLANES[plane][1](call)
