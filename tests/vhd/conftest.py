"""Fixtures for the VHD tests: a fresh container on the test Azurite, and blob clients whose
requests are recorded where they leave for the wire (urllib3's `urlopen` for the SDK,
http.client's `request` for the upload's direct puts), so tests can count writes and bytes
and alter requests."""

from __future__ import annotations

import http.client
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

from tests.conftest import AzuriteAccount

READ_METHODS = {"GET", "HEAD"}


@dataclass
class WireRequest:
    """A request about to be sent; changes to `url`, `headers`, `body` are sent."""

    method: str
    url: str
    headers: Any
    body: Any


@dataclass
class Recorder:
    """Records (method, query, Content-Length) of each request; `before` may alter or fail one."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)
    page_ranges: list[tuple[int, int]] = field(default_factory=list)  # of Put Page, half-open
    before: Callable[[Any], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: WireRequest) -> None:
        if self.before is not None:
            self.before(request)
        length = int(request.headers.get("Content-Length") or 0)
        query = request.url.partition("?")[2]
        with self.lock:
            self.requests.append((request.method, query, length))
            if request.method == "PUT" and "comp=page" in query.split("&"):
                first, _, last = request.headers["x-ms-range"].removeprefix("bytes=").partition("-")
                self.page_ranges.append((int(first), int(last) + 1))

    @property
    def writes(self) -> list[tuple[str, str, int]]:
        """Requests that change something (anything but GET and HEAD)."""
        return [r for r in self.requests if r[0] not in READ_METHODS]

    @property
    def page_puts(self) -> list[tuple[str, str, int]]:
        """Put Page requests."""
        return [r for r in self.requests if r[0] == "PUT" and "comp=page" in r[1].split("&")]

    @property
    def page_bytes(self) -> int:
        """Body bytes of all Put Page requests."""
        return sum(r[2] for r in self.page_puts)


@pytest.fixture
def container(azurite: AzuriteAccount) -> ContainerClient:
    """A new, empty container on the test Azurite."""
    service = BlobServiceClient(
        azurite.blob_endpoint, credential=azurite.credential, connection_verify=azurite.ca_bundle
    )
    client = service.get_container_client(f"vhd-{uuid.uuid4().hex[:12]}")
    client.create_container()
    return client


BlobFactory = Callable[..., BlobClient]


def written(blob: BlobClient) -> list[tuple[int, int]]:
    """The blob's written page ranges, half-open, touching ones joined."""
    runs: list[tuple[int, int]] = []
    for item in blob.list_page_ranges():
        assert item.start is not None and item.end is not None
        start, end = item.start, item.end + 1
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> dict[str, Recorder]:
    """Blob path -> the Recorder that sees every request sent to that blob (via urllib3, as
    the SDK sends, or via http.client, as the direct puts do)."""
    recorders: dict[str, Recorder] = {}

    def seen(origin: str, method: str, url: str, kwargs: dict[str, Any]) -> str:
        """Show the request to its blob's recorder; the URL (path and query) to send."""
        recorder = recorders.get(url.partition("?")[0])
        if recorder is None:
            return url
        headers = kwargs.get("headers")
        if headers is None:
            headers = kwargs["headers"] = {}
        request = WireRequest(method, origin + url, headers, kwargs.get("body"))
        recorder(request)
        kwargs["body"] = request.body
        return request.url.removeprefix(origin)

    pool_class = urllib3.connectionpool.HTTPConnectionPool
    original = pool_class.urlopen

    def urlopen(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        url = seen(f"{pool.scheme}://{pool.host}:{pool.port}", method, url, kwargs)
        return original(pool, method, url, *args, **kwargs)

    conn_class = http.client.HTTPConnection
    send = conn_class.request

    def request(conn: Any, method: str, url: str, body: Any = None, headers: Any = None) -> None:
        scheme = "https" if isinstance(conn, http.client.HTTPSConnection) else "http"
        kwargs = {"body": body, "headers": headers}
        url = seen(f"{scheme}://{conn.host}:{conn.port}", method, url, kwargs)
        send(conn, method, url, body=kwargs["body"], headers=kwargs["headers"])

    monkeypatch.setattr(pool_class, "urlopen", urlopen)
    monkeypatch.setattr(conn_class, "request", request)
    return recorders


@pytest.fixture
def make_blob(
    azurite: AzuriteAccount, container: ContainerClient, wire: dict[str, Recorder]
) -> BlobFactory:
    """`make_blob(name, recorder=None)`: a BlobClient in the test container; the recorder (or
    none) given last for a blob name sees the requests of every client of that blob."""

    def make(name: str = "disk.vhd", recorder: Recorder | None = None) -> BlobClient:
        blob = BlobClient(
            azurite.blob_endpoint,
            container.container_name,
            name,
            credential=azurite.credential,
            connection_verify=azurite.ca_bundle,
        )
        path = urlsplit(blob.url).path
        if recorder is None:
            wire.pop(path, None)
        else:
            wire[path] = recorder
        return blob

    return make
