"""Azure error mapping with the real SDK clients talking to a scripted HTTPS server."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError

from batchimage.azure.errors import SDK_RETRY, azure_call, is_not_found, next_action, translate
from batchimage.core.errors import PermanentAzureError, TransientAzureError


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Scripted(ThreadingHTTPServer):
    """Answers every request with the next scripted reply (the last one repeats)."""

    daemon_threads = True

    def __init__(self, tls_dir: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.replies: list[Reply] = []
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests.append(f"{self.command} {self.path}")
        reply = self.server.next_reply()
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer


class Token:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("test-token", int(time.time()) + 3600)


@pytest.fixture
def server(tls_dir: Path) -> Iterator[Scripted]:
    srv = Scripted(tls_dir)
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def arm_client(server: Scripted, tls_dir: Path, **retry: Any) -> Any:
    from azure.mgmt.resource.resources import ResourceManagementClient

    kwargs = {**SDK_RETRY, "retry_backoff_factor": 0, **retry}
    return ResourceManagementClient(
        Token(),
        "00000000-0000-0000-0000-000000000001",
        base_url=server.url,
        connection_verify=str(tls_dir / "ca.pem"),
        credential_scopes=["x/.default"],
        **kwargs,
    )


def arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def ids(request_id: str = "req-1") -> dict[str, str]:
    return {"x-ms-request-id": request_id, "x-ms-correlation-request-id": "corr-1"}


def get_group(server: Scripted, tls_dir: Path, reply: Reply, **retry: Any) -> Exception:
    server.replies = [reply]
    client = arm_client(server, tls_dir, retry_total=0, **retry)
    with pytest.raises(HttpResponseError) as info:
        client.resource_groups.get("rg-demo")
    return info.value


def test_throttling_is_transient_with_retry_after_and_ids(server: Scripted, tls_dir: Path) -> None:
    reply = Reply(429, arm_error("TooManyRequests", "slow down"), {**ids(), "Retry-After": "7"})
    err = translate(get_group(server, tls_dir, reply), "read group rg-demo")
    assert isinstance(err, TransientAzureError)
    assert (err.code, err.status, err.retry_after) == ("TooManyRequests", 429, 7.0)
    assert (err.request_id, err.correlation_id, err.operation) == (
        "req-1",
        "corr-1",
        "read group rg-demo",
    )
    assert "request id req-1" in str(err) and "correlation id corr-1" in str(err)


@pytest.mark.parametrize(
    ("status", "code", "message", "transient"),
    [
        (500, "InternalServerError", "oops", True),
        (503, "ServiceUnavailable", "later", True),
        (
            409,
            "AnotherOperationInProgress",
            "Another operation on this resource is in progress",
            True,
        ),
        (
            409,
            "OperationNotAllowed",
            "Operation 'start' is not allowed since the VM is being deallocated",
            True,
        ),
        (
            409,
            "OperationNotAllowed",
            "Operation results in exceeding approved standardDSv5Family Cores quota",
            False,
        ),
        (409, "ResourceGroupBeingDeleted", "The resource group is being deleted", True),
        (400, "InvalidParameter", "vmSize is not valid", False),
        (403, "AuthorizationFailed", "The client does not have authorization", False),
        (404, "ResourceGroupNotFound", "Resource group 'rg-demo' could not be found.", False),
        (409, "Conflict", "The name is already used by another subscription", False),
        # One action run command per VM: it clears only when the one in progress ends, and
        # never when that one's guest agent stopped (Azure/azure-cli#14642).
        (
            409,
            "Conflict",
            "Run command extension execution is in progress. Please wait for completion "
            "before invoking a run command.",
            False,
        ),
    ],
)
def test_status_and_code_decide_transient_or_permanent(
    server: Scripted, tls_dir: Path, status: int, code: str, message: str, transient: bool
) -> None:
    err = translate(get_group(server, tls_dir, Reply(status, arm_error(code, message), ids())))
    assert isinstance(err, TransientAzureError if transient else PermanentAzureError)
    assert err.code == code and err.message == message and err.status == status


def test_next_action_speaks_to_a_person(server: Scripted, tls_dir: Path) -> None:
    forbidden = translate(
        get_group(server, tls_dir, Reply(403, arm_error("AuthorizationFailed", "no")))
    )
    assert "role" in next_action(forbidden)
    quota = translate(
        get_group(server, tls_dir, Reply(409, arm_error("OperationNotAllowed", "exceeding quota")))
    )
    assert "quota" in next_action(quota)
    missing = translate(
        get_group(server, tls_dir, Reply(404, arm_error("ResourceGroupNotFound", "x")))
    )
    assert is_not_found(missing) and "exists" in next_action(missing)
    busy = translate(
        get_group(
            server,
            tls_dir,
            Reply(409, arm_error("Conflict", "Run command extension execution is in progress.")),
        )
    )
    assert "batchimage destroy" in next_action(busy) and "instance view" in next_action(busy)
    # the command to run again is the one that failed: plan does not send you to apply
    assert next_action(forbidden, "plan").endswith("then run plan again.")
    assert "apply" not in next_action(forbidden, "plan")


def test_sdk_retry_is_bounded_to_four_requests(server: Scripted, tls_dir: Path) -> None:
    server.replies = [Reply(503, arm_error("ServiceUnavailable", "later"))]
    client = arm_client(server, tls_dir)
    with pytest.raises(HttpResponseError):
        client.resource_groups.get("rg-demo")
    assert len(server.requests) == SDK_RETRY["retry_total"] + 1


def test_connection_refused_is_transient(tls_dir: Path) -> None:
    from azure.mgmt.resource.resources import ResourceManagementClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ResourceManagementClient(
        Token(),
        "00000000-0000-0000-0000-000000000001",
        base_url=f"https://127.0.0.1:{port}",
        connection_verify=str(tls_dir / "ca.pem"),
        credential_scopes=["x/.default"],
        retry_total=0,
    )
    with pytest.raises(TransientAzureError) as info, azure_call("read group rg-demo"):
        client.resource_groups.get("rg-demo")
    assert info.value.code == "ConnectionError"
    assert info.value.operation == "read group rg-demo"


def test_batch_data_plane_error_keeps_code_message_and_request_id(
    server: Scripted, tls_dir: Path
) -> None:
    from azure.batch import BatchClient

    body = {
        "odata.metadata": "https://x/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element",
        "code": "PoolNotFound",
        "message": {"lang": "en-US", "value": "The specified pool does not exist."},
    }
    server.replies = [Reply(404, body, {"request-id": "batch-req-9"})]
    client = BatchClient(
        server.url, Token(), connection_verify=str(tls_dir / "ca.pem"), retry_total=0
    )
    with pytest.raises(PermanentAzureError) as info, azure_call("get pool p1"):
        client.get_pool("p1")
    err = info.value
    assert (err.code, err.message, err.request_id) == (
        "PoolNotFound",
        "The specified pool does not exist.",
        "batch-req-9",
    )
    assert is_not_found(err)


def test_storage_error_code_from_header_and_retry_after_ms(server: Scripted, tls_dir: Path) -> None:
    from azure.storage.blob import BlobClient

    server.replies = [
        Reply(
            503,
            None,
            {
                "x-ms-error-code": "ServerBusy",
                "x-ms-request-id": "st-1",
                "x-ms-retry-after-ms": "1500",
            },
        )
    ]
    blob = BlobClient(
        server.url,
        "c",
        "b",
        credential={"account_name": "acct", "account_key": "a2V5"},
        connection_verify=str(tls_dir / "ca.pem"),
        retry_total=0,
    )
    with pytest.raises(TransientAzureError) as info, azure_call("download b"):
        blob.download_blob().readall()
    assert (info.value.code, info.value.request_id, info.value.retry_after) == (
        "ServerBusy",
        "st-1",
        1.5,
    )


def test_secrets_in_error_messages_are_redacted(server: Scripted, tls_dir: Path) -> None:
    message = "cannot read https://a.blob.core.windows.net/c/x.vhd?sv=1&sig=TOPSECRET"
    err = translate(get_group(server, tls_dir, Reply(400, arm_error("InvalidParameter", message))))
    assert "TOPSECRET" not in str(err) and "sig=REDACTED" in str(err)
