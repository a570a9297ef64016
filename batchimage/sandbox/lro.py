"""Long-running operations the ARM way, so the SDK pollers run their real code paths.

`start()` records an operation (InProgress) and schedules its completion after the
operation's simulated duration; the handler answers 201/202 with the headers from
`headers()`: `Azure-AsyncOperation` (status resource: `{"status": "InProgress" |
"Succeeded" | "Failed", "error"?}`), `Location` (202 while running, then the result: 200 +
body or 204) and `Retry-After` as Azure's answers to that operation carry it (see
`retry_after`).
When the operation completes its `done` action runs (e.g. provisioningState -> Succeeded);
a failed one (fault injection, or an action raising `ApiError`) runs `failed` instead; an
action raising `Pending` leaves it InProgress for good (nothing will ever report its end).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from batchimage.sandbox.apierrors import ApiError
from batchimage.sandbox.clock import ACTIONS, action, schedule
from batchimage.sandbox.context import Call, Reply, World
from batchimage.sandbox.routing import Route

STATUS_WORDS = ("operations", "operationStatuses", "asyncoperations", "asyncOperationStatuses")
RESULT_WORDS = ("operationResults", "accountOperationResults")


class Pending(Exception):
    """Raised by a `done` action: the operation does not end (it stays InProgress)."""


def iso(ts: float) -> str:
    """Epoch seconds -> ISO 8601 UTC with 7 fraction digits, as ARM writes times."""
    stamp = dt.datetime.fromtimestamp(ts, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}0Z"


def operations(world: World) -> dict[str, Any]:
    return world.store.table("operations")


def start(
    call: Call,
    *,
    namespace: str,
    duration: float,
    done: str,
    kind: str | None = None,
    args: dict[str, Any] | None = None,
    failed: str | None = None,
    resource_id: str | None = None,
    result_status: int = 200,
    location: str | None = None,
) -> dict[str, Any]:
    """Record an InProgress operation that completes after `duration` simulated seconds.

    `kind`: the operation (its durations key, e.g. "vm.create"), for the Retry-After its
    answers carry. `done` / `failed` name registered timer actions called as
    `fn(world, args)`; `args` gets `operation` (the id) added. `resource_id`: the resource
    whose rendering is the Location result (`result_status` 200), or None for "no content"
    (204).
    A fault rule may make the operation end Failed with a chosen error code.
    """
    from batchimage.sandbox.faults import injector

    op_id = str(uuid.uuid4())
    now = call.clock.now()
    fail = injector(call.world).lro_failure(call)
    record = {
        "id": op_id,
        "subscription": call.params.get("subscription", call.world.identity.subscription_id),
        "namespace": namespace,
        "kind": kind,
        "location": (location or call.world.identity.location).replace(" ", "").lower(),
        "api_version": call.api_version or "",
        "status": "InProgress",
        "start": now,
        "due": call.world.clock.due(duration),  # simulated end (benchmarks' critical path)
        "done": done,
        "failed": failed,
        "args": {**(args or {}), "operation": op_id},
        "resource_id": resource_id,
        "result_status": result_status if resource_id else 204,
        "error": None,
        "fail": fail,
    }
    operations(call.world)[op_id] = record
    schedule(call.world, duration, "lro.finish", {"operation": op_id})
    return record


def end(world: World, op: dict[str, Any]) -> None:
    """End `op` now, as when it is due (its timer then finds it ended)."""
    _finish(world, {"operation": op["id"]})


@action("lro.finish")
def _finish(world: World, args: dict[str, Any]) -> None:
    op = operations(world).get(args["operation"])
    if op is None or op["status"] != "InProgress":
        return
    error: dict[str, Any] | None = op.get("fail")
    if error is None:
        try:
            ACTIONS[op["done"]](world, op["args"])
        except Pending:
            world.store.touch()
            return
        except ApiError as exc:
            error = {"code": exc.code, "message": exc.message, "status": exc.status}
    if error is not None:
        op["status"] = "Failed"
        op["error"] = {"code": error["code"], "message": error["message"]}
        op["error_status"] = int(error.get("status", 400))
        if op.get("failed"):
            ACTIONS[op["failed"]](world, {**op["args"], "error": op["error"]})
    else:
        op["status"] = "Succeeded"
    op["end"] = world.clock.now()
    world.store.touch()


# The shortest scaled Retry-After (the connection file's polling interval has the same floor).
MIN_REAL_INTERVAL = 0.005


def retry_after(world: World, op: dict[str, Any], *, poll: bool = False) -> dict[str, str]:
    """The wait the answer about `op` asks for: nothing once it ended; else its operation's
    next Retry-After (`config.retry_after_of`; `poll`: an answer to a poll, which moves on to
    the next), scaled. Whole seconds from a second up, as Azure sends (the SDKs' generated
    code reads `Retry-After` as an int); under a second, which only a scaled clock asks for,
    `retry-after-ms` instead (azure-core's pollers read it as the same delay), floored at
    `MIN_REAL_INTERVAL` so a fast clock does not make clients spin."""
    if op["status"] != "InProgress":
        return {}
    asks = world.config.retry_after_of(op.get("kind"))
    if poll:
        op["polls"] = op.get("polls", 0) + 1
    ask = asks[min(op.get("polls", 0), len(asks) - 1)]
    if ask is None:
        return {}
    seconds = world.clock.real(ask)
    if seconds >= 1:
        return {"Retry-After": str(int(seconds))}
    return {"retry-after-ms": str(round(1000 * max(seconds, MIN_REAL_INTERVAL)))}


def _op_url(world: World, op: dict[str, Any], word: str) -> str:
    base = f"{world.base_url}/subscriptions/{op['subscription']}"
    if op["namespace"] == "Microsoft.Resources":
        path = f"{base}/operationresults/{op['id']}"
    else:
        path = f"{base}/providers/{op['namespace']}/locations/{op['location']}/{word}/{op['id']}"
    return f"{path}?api-version={op['api_version']}"


def headers(
    world: World, op: dict[str, Any], *, async_op: bool = True, location: bool = True
) -> dict[str, str]:
    """Polling headers for `op`: Azure-AsyncOperation and/or Location, and Retry-After."""
    out = retry_after(world, op)
    if async_op:
        out["Azure-AsyncOperation"] = _op_url(world, op, "operations")
    if location:
        out["Location"] = _op_url(world, op, "operationResults")
    return out


def accepted(world: World, op: dict[str, Any], *, async_op: bool = False) -> Reply:
    """202 Accepted, no body, with Location (+ Azure-AsyncOperation if asked)."""
    return Reply(202, None, headers(world, op, async_op=async_op, location=True))


def _find(call: Call) -> dict[str, Any]:
    op = operations(call.world).get(call.params["operation"])
    if op is None or op["subscription"].lower() != call.params["subscription"].lower():
        raise ApiError(
            404, "NotFound", f"The operation '{call.params['operation']}' was not found."
        )
    return op


def status_reply(call: Call) -> Reply:
    """GET on an Azure-AsyncOperation URL: the operation status resource."""
    op = _find(call)
    body: dict[str, Any] = {
        "id": call.path,
        "name": op["id"],
        "status": op["status"],
        "startTime": iso(op["start"]),
    }
    extra: dict[str, str] = {}
    if op["status"] == "InProgress":
        extra.update(retry_after(call.world, op, poll=True))
    else:
        body["endTime"] = iso(op["end"])
    if op["error"]:
        body["error"] = op["error"]
    return Reply(200, body, extra)


def result_reply(call: Call) -> Reply:
    """GET on a Location URL: 202 while running, then the result, or the error."""
    from batchimage.sandbox import arm

    op = _find(call)
    if op["status"] == "InProgress":
        return Reply(
            202,
            None,
            {
                "Location": _op_url(call.world, op, "operationResults"),
                **retry_after(call.world, op, poll=True),
            },
        )
    if op["status"] == "Failed":
        err = op["error"]
        raise ApiError(op.get("error_status", 400), err["code"], err["message"])
    if op["resource_id"]:
        record = arm.resources(call.world).get(op["resource_id"].lower())
        if record is not None:
            return Reply(op["result_status"], arm.render(call.world, record))
    if op.get("result") is not None:
        return Reply(200, op["result"])
    return Reply(204, None)


def routes() -> list[Route]:
    """The operation status and result endpoints for every provider namespace."""
    out = [
        Route(
            "GET",
            "/subscriptions/{subscription}/operationresults/{operation}",
            result_reply,
            "Operations_GetResult",
            write=False,
        )
    ]
    base = "/subscriptions/{subscription}/providers/{namespace}/locations/{location}/"
    kinds = [(w, status_reply, "Operations_GetStatus") for w in STATUS_WORDS]
    kinds += [(w, result_reply, "Operations_GetResult") for w in RESULT_WORDS]
    for word, handler, name in kinds:
        out.append(Route("GET", base + word + "/{operation}", handler, name, write=False))
    return out
