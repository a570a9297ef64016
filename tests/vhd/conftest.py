"""Fixtures for the VHD tests: a fresh container on the test Azurite, and blob clients whose
requests are recorded where they leave for the wire (urllib3), whether the SDK or the
upload's direct puts send them, so tests can count writes and bytes and alter requests."""

from __future__ import annotations

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
    """A request as urllib3 is about to send it; changes to `url`, `headers`, `body` are sent."""

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
    """Blob path -> the Recorder that sees every request sent to that blob (via urllib3)."""
    recorders: dict[str, Recorder] = {}
    pool_class = urllib3.connectionpool.HTTPConnectionPool
    original = pool_class.urlopen

    def urlopen(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        recorder = recorders.get(url.partition("?")[0])
        if recorder is not None:
            headers = kwargs.get("headers")
            if headers is None:
                headers = kwargs["headers"] = {}
            full = f"{pool.scheme}://{pool.host}:{pool.port}{url}"
            request = WireRequest(method, full, headers, kwargs.get("body"))
            recorder(request)
            kwargs["body"] = request.body
            url = request.url.removeprefix(full.partition(url)[0])
        return original(pool, method, url, *args, **kwargs)

    monkeypatch.setattr(pool_class, "urlopen", urlopen)
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
