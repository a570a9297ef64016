"""The sandbox's ASGI app: one dispatcher in front of every service's routes.

Per request: find the route, check auth (Bearer token for ARM/Batch/Key Vault, issued for
that plane's audience; the admin key for /_sandbox; a Key Vault request to a vault that
does not exist has its connection dropped, as its host would not resolve), require
`api-version` on ARM, run the world's checks (role-based access), apply fault rules, then
run the handler in a worker thread inside a store transaction (due timers settle first,
changes are saved, change hooks such as the Azurite account sync run), render errors in
the plane's shape, stamp `x-ms-request-id` / `x-ms-correlation-request-id`, and log the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import traceback
import uuid
from typing import Any

import anyio
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from batchimage.sandbox import auth, lro, register
from batchimage.sandbox.apierrors import ApiError, Unreachable, missing_api_version
from batchimage.sandbox.clock import settle
from batchimage.sandbox.context import Call, Reply, World
from batchimage.sandbox.faults import FaultRule, injector
from batchimage.sandbox.ratelimit import limits
from batchimage.sandbox.requestlog import RequestLog
from batchimage.sandbox.routing import Route, Router


def build_router(extra: list[Route] | None = None) -> Router:
    """Auth, admin and operation routes plus every registered service's routes."""
    from batchimage.sandbox import adminapi
    from batchimage.sandbox.services import load_services

    router = Router()
    router.extend(auth.routes())
    router.extend(adminapi.routes())
    router.extend(lro.routes())
    for service in load_services():
        router.extend(service.routes)
    router.extend(extra or [])
    return router


class SandboxApp:
    """ASGI callable serving `world` through `router`."""

    def __init__(self, world: World, router: Router) -> None:
        self.world = world
        self.router = router
        if world.log is None:
            world.log = RequestLog()
        injector(world)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        method = request.method.upper()
        path = request.url.path
        headers = {k.lower(): v for k, v in request.headers.items()}
        request_id = str(uuid.uuid4())
        correlation = (
            headers.get("x-ms-correlation-request-id")
            or headers.get("x-ms-client-request-id")
            or request_id
        )
        found = self.router.resolve(method, path)
        route = found[0] if found else None
        plane = route.plane if route else _plane_of(path)
        fault: FaultRule | None = None
        remaining: dict[str, str] = {}  # ARM's remaining-requests headers for the answer
        try:
            if route is None:
                _authenticate(self.world, plane, path, headers)
                raise self._no_route(method, path, plane)
            call = Call(
                world=self.world,
                route=route,
                method=method,
                path=path,
                params=found[1] if found else {},
                query={k.lower(): v for k, v in request.query_params.items()},
                headers=headers,
                body=body,
                request_id=request_id,
            )
            self._check(call)
            if plane == "arm":
                remaining = limits(self.world).take(self.world, call)
            if plane in ("arm", "batch"):
                fault = injector(self.world).pick(method, path)
            if fault is not None and fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault is not None and fault.kind == "status":
                extra = (
                    {"Retry-After": _seconds(fault.retry_after)}
                    if fault.retry_after is not None
                    else {}
                )
                raise ApiError(fault.status, fault.code, fault.message, headers=extra)
            elif fault is not None and fault.kind == "drop":
                self._log(method, path, route, plane, 0, fault, request_id)
                await _drop(send)
                return
            reply = await anyio.to_thread.run_sync(self._run, call)
        except Unreachable:
            self._log(method, path, route, plane, 0, None, request_id)
            await _hang_up(send)
            return
        except ApiError as err:
            if plane != "admin" and register.unregistered(err.code):
                err = ApiError(500, "InternalServerError", f"sandbox: {register.refusal(err.code)}")
            reply = Reply(err.status, self._error_body(err, plane), dict(err.headers))
        except Exception as exc:  # a sandbox bug must still answer like a server would
            traceback.print_exc(file=sys.stderr)
            reply = Reply(
                500,
                {"error": {"code": "InternalServerError", "message": f"sandbox error: {exc!r}"}},
            )
        if reply.status < 400:
            reply.headers.update(remaining)
        reply.headers.setdefault("x-ms-request-id", request_id)
        reply.headers.setdefault("x-ms-correlation-request-id", correlation)
        if plane == "batch":
            reply.headers.setdefault("request-id", request_id)
            if "client-request-id" in headers:
                reply.headers.setdefault("client-request-id", headers["client-request-id"])
        await _send(send, reply, head=method == "HEAD")
        self._log(method, path, route, plane, reply.status, fault, request_id)

    def _check(self, call: Call) -> None:
        plane = call.route.plane
        call.claims = _authenticate(self.world, plane, call.path, call.headers)
        if plane == "arm" and not call.api_version:
            raise missing_api_version()
        if plane == "admin":
            from batchimage.sandbox.adminapi import check_admin

            check_admin(call)

    def _run(self, call: Call) -> Reply:
        store = self.world.store
        with store.transaction():
            settle(self.world)
            if call.claims:  # inside the transaction: checks read the store
                for check in self.world.checks:
                    check(call)
            try:
                return call.route.handler(call)
            finally:
                if store._dirty:
                    for hook in self.world.on_change:
                        hook(self.world)

    def _no_route(self, method: str, path: str, plane: str) -> ApiError:
        methods = self.router.path_known(path)
        if methods:
            return ApiError(
                405,
                "MethodNotAllowed",
                f"The requested resource does not support http method '{method}'.",
            )
        if plane == "arm":
            segments = [s for s in path.split("/") if s]
            lowered = [s.lower() for s in segments]
            if "providers" in lowered:
                i = len(lowered) - 1 - lowered[::-1].index("providers")
                namespace = segments[i + 1] if i + 1 < len(segments) else ""
                type_name = "/".join(segments[i + 2 :: 2]) or "(none)"
                return ApiError(
                    400,
                    "InvalidResourceType",
                    f"The resource type '{type_name}' could not be found in the namespace "
                    f"'{namespace}' (not modelled by the batchimage sandbox).",
                )
        return ApiError(404, "NotFound", f"No such API in the batchimage sandbox: {method} {path}")

    def _error_body(self, err: ApiError, plane: str) -> dict[str, Any]:
        if plane == "batch":
            return err.batch_body(self.world.base_url)
        if plane == "auth":
            return err.oauth_body()
        return err.arm_body()

    def _log(
        self,
        method: str,
        path: str,
        route: Route | None,
        plane: str,
        status: int,
        fault: FaultRule | None,
        request_id: str,
    ) -> None:
        if plane == "admin" or self.world.log is None:
            return
        self.world.log.record(
            time=time.time(),
            method=method,
            path=path,
            operation=route.operation if route else "Unknown",
            plane=plane,
            write=bool(route.write) if route else method not in ("GET", "HEAD"),
            status=status,
            fault=fault.kind if fault else None,
            request_id=request_id,
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _plane_of(path: str) -> str:
    """The API plane of a path no route serves (for its auth and error shape)."""
    lowered = path.lower()
    if lowered.startswith("/subscriptions"):
        return "arm"
    if lowered.startswith("/batch/"):
        return "batch"
    if lowered.startswith("/keyvault/"):
        return "keyvault"
    return "public"


def _authenticate(world: World, plane: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """The bearer token's claims for a request to a plane that takes one (ARM, Batch, Key
    Vault, whose gate also drops a request to an unknown vault: `services/keyvault/plane.py`);
    none for the admin and public planes."""
    if plane in ("arm", "batch"):
        return auth.check_request(world, headers, plane)
    if plane == "keyvault":
        from batchimage.sandbox.services.keyvault.plane import gate

        return gate(world, path, headers)
    return {}


def _seconds(value: float | None) -> str:
    seconds = float(value or 0)
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:.3f}"


async def _send(send: Send, reply: Reply, head: bool = False) -> None:
    if reply.body is None:
        payload = b""
    elif isinstance(reply.body, bytes):
        payload = reply.body
    else:
        payload = json.dumps(reply.body).encode()
    headers = [(k.lower().encode(), str(v).encode()) for k, v in reply.headers.items()]
    if payload or reply.body is not None:
        headers.append((b"content-type", reply.content_type.encode()))
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})


class DroppedConnection(Exception):
    """Raised after a partial response so the server closes the connection mid-answer."""


async def _drop(send: Send) -> None:
    """Start a response, then abort it: the client sees the connection close mid-response."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"4096"), (b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"', "more_body": True})
    raise DroppedConnection("fault injection: connection dropped")


async def _hang_up(send: Send) -> None:
    """Close the connection before any status line, as a host that does not resolve gives
    the client no answer at all (azure-core raises ServiceResponseError, not an HTTP error).
    uvicorn marks a response started before writing its status line, and closes the
    connection, having written nothing, when it cannot write it (a status beyond 599)."""
    with contextlib.suppress(Exception):
        await send({"type": "http.response.start", "status": 999, "headers": []})
    raise DroppedConnection("unreachable host: connection closed without an answer")
