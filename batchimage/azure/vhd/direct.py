"""Put Page requests sent straight over http.client: the upload's hot loop, at a fifth of the CPU.

    putter = DirectPutter.for_blob(blob, verify=ca_bundle, workers=8)
    if not putter.put(view, offset):        # False: send this range through the SDK instead
        blob.upload_page(view, offset, len(view))

The SDK's `BlobClient.upload_page` spends about 1.4 ms of client CPU per request in its
pipeline (a dozen policies, requests' session machinery, header (de)serialisation); the same
Put Page sent over urllib3's `urlopen` costs about 0.45 ms (it re-encodes the long SAS query
twice, builds its retry and response objects), and over the standard library's http.client
about 0.28 ms, most of it TLS and parsing the answer's headers. A disk with many small data
runs needs thousands of puts, so this is most of the upload's CPU (see bench/vhd.md).

The connections are http.client's own, kept alive in a small pool (one per worker), with
TLS verified against the blob client's CA bundle (`ssl.create_default_context`), a 20 s
connect and a 120 s read timeout. A kept-alive connection the service closed meanwhile is
replaced before use; a put that fails on one before any answer is sent once more on a new
connection (Put Page is idempotent, so a range sent twice is harmless).

The putter uses the blob client's own credential: a SAS already in its URL, a short blob SAS
made from its account key (write only, renewed before it expires), or an Entra ID token from
its token credential. It never raises for a failed request: `put` returns False and the
caller sends the range through the SDK, which retries, maps errors and reports them. A
4xx answer (a credential or request the service refuses; not Md5Mismatch, which is damage on
the way), three failures in a row, an HTTP(S)
proxy in the environment or a credential of another kind switch the direct path off for the
rest of the upload (`reason` says why).
"""

from __future__ import annotations

import base64
import http.client
import os
import platform
import select
import ssl
import threading
import time
import urllib.request
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

STORAGE_SCOPE = "https://storage.azure.com/.default"
SAS_LIFETIME = timedelta(hours=2)
RENEW_BEFORE = 600.0  # seconds: renew a SAS or token this long before it expires
MAX_FAILURES = 3
CONNECT_TIMEOUT = 20.0  # seconds
READ_TIMEOUT = 120.0  # seconds: a socket operation on an open connection
IDLE_CHECK = 1.0  # seconds: a connection idle this long is checked before it is used again
# what sending on a kept-alive connection the service has closed raises (no answer came)
CLOSED_WHILE_IDLE = (
    ConnectionError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    http.client.BadStatusLine,
)


def _user_agent() -> str:
    from batchimage import __version__

    return f"batchimage/{__version__} Python/{platform.python_version()}"


def _default_verify() -> str:
    """The CA bundle requests would use: REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, else certifi's."""
    import certifi

    env = os.environ
    return env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or certifi.where()


def _client_verify(blob: BlobClient) -> bool | str:
    """The `connection_verify` the blob client was made with (True if it cannot be told)."""
    transport = getattr(getattr(blob, "_config", None), "transport", None)
    verify = getattr(getattr(transport, "connection_config", None), "verify", True)
    return verify if isinstance(verify, (bool, str)) else True


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """A client TLS context: certificates and host names verified against the CA bundle (a
    file or a folder) `verify`, or (False) not verified at all."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if verify is True:
        verify = _default_verify()
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def _behind_proxy(url: str) -> bool:
    """True if the environment routes `url` through a proxy (the SDK path honours it)."""
    proxies = urllib.request.getproxies()
    scheme = urlsplit(url).scheme
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(urlsplit(url).hostname or "")


class _Auth:
    """Makes the query string or Authorization header for a put; renews it before expiry."""

    def __init__(self, blob: BlobClient) -> None:
        self.blob = blob
        self.credential: Any = blob.credential
        self.lock = threading.Lock()
        self.query = urlsplit(blob.url).query
        self.header: str | None = None
        self.expires = 0.0  # the SAS or token to make is not made yet
        if "sig=" in self.query:
            self.kind = "sas"
        elif hasattr(self.credential, "account_key") and hasattr(self.credential, "account_name"):
            self.kind = "account key"
        elif hasattr(self.credential, "get_token"):
            self.kind = "token"
        else:
            self.kind = ""

    def current(self) -> tuple[str, str | None]:
        """The query string and Authorization header (or None) to send now."""
        if self.kind in ("account key", "token") and time.time() > self.expires - RENEW_BEFORE:
            with self.lock:
                if time.time() > self.expires - RENEW_BEFORE:
                    self._renew()
        return self.query, self.header

    def _renew(self) -> None:
        if self.kind == "account key":
            from azure.storage.blob import BlobSasPermissions, generate_blob_sas

            from batchimage.core.redact import register_secret

            now = datetime.now(UTC)
            self.query = generate_blob_sas(
                self.credential.account_name,
                self.blob.container_name,
                self.blob.blob_name,
                account_key=self.credential.account_key,
                permission=BlobSasPermissions(write=True),
                start=now - timedelta(minutes=5),
                expiry=now + SAS_LIFETIME,
            )
            register_secret(self.query)
            self.expires = time.time() + SAS_LIFETIME.total_seconds()
        else:
            token = self.credential.get_token(STORAGE_SCOPE)
            self.header = f"Bearer {token.token}"
            self.expires = float(token.expires_on)


class _Http(http.client.HTTPConnection):
    """http.client's connection with a read timeout apart from the connect timeout."""

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(READ_TIMEOUT)


class _Https(http.client.HTTPSConnection):
    """http.client's TLS connection with a read timeout apart from the connect timeout."""

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(READ_TIMEOUT)


class Connections:
    """Kept-alive http.client connections to one endpoint, at most `size` idle; thread-safe
    (a deque's append and pop are atomic)."""

    def __init__(self, url: str, size: int, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port
        self.context = context
        self.size = size
        self.idle: deque[tuple[http.client.HTTPConnection, float]] = deque()

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """An open idle connection (True) or a new one, connected on its first request; one
        idle for over `IDLE_CHECK` seconds is first checked for having been closed."""
        while True:
            try:
                conn, since = self.idle.pop()
            except IndexError:
                break
            if conn.sock is not None and (
                time.monotonic() - since < IDLE_CHECK or not _dropped(conn.sock)
            ):
                return conn, True
            conn.close()
        if self.context is None:
            return _Http(self.host, self.port, timeout=CONNECT_TIMEOUT), False
        return _Https(self.host, self.port, timeout=CONNECT_TIMEOUT, context=self.context), False

    def give(self, conn: http.client.HTTPConnection) -> None:
        """Keep `conn` for the next request (or close it if enough are kept)."""
        if len(self.idle) < self.size:
            self.idle.append((conn, time.monotonic()))
        else:
            conn.close()

    def close(self) -> None:
        """Close the idle connections."""
        while True:
            try:
                self.idle.pop()[0].close()
            except IndexError:
                return


def _dropped(sock: Any) -> bool:
    """True if an idle connection's socket has something to read: the peer closed it (or
    sent what no request asked for), so it must not carry another request."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class DirectPutter:
    """Sends Put Page requests for one blob over kept-alive http.client connections;
    thread-safe."""

    def __init__(
        self,
        blob: BlobClient,
        connections: Connections | None,
        reason: str,
        auth: _Auth | None = None,
    ):
        self.blob = blob
        self.connections = connections
        self.reason = reason  # why the direct path is off ("" while it is on)
        self.auth = auth or _Auth(blob)
        self.path = urlsplit(blob.url).path
        self.version = blob.api_version
        self.agent = _user_agent() if connections is not None else ""
        self.failures = 0
        self.lock = threading.Lock()

    @classmethod
    def for_blob(cls, blob: BlobClient, *, verify: bool | str | None, workers: int) -> DirectPutter:
        """A putter for `blob`, or a switched-off one when the direct path cannot serve it."""
        auth = _Auth(blob)
        reason = ""
        if not auth.kind:
            reason = f"credential {type(auth.credential).__name__} is not supported"
        elif _behind_proxy(blob.url):
            reason = "a proxy is configured"
        if reason:
            return cls(blob, None, reason, auth)
        if verify is None:
            verify = _client_verify(blob)
        context = _tls_context(verify) if urlsplit(blob.url).scheme == "https" else None
        return cls(blob, Connections(blob.url, workers, context), "", auth)

    @property
    def enabled(self) -> bool:
        """True while puts go the direct way."""
        return not self.reason

    def put(self, view: memoryview, offset: int, md5: bytes | None = None) -> bool:
        """Put `view` at `offset`; True on 201 Created, False if the caller must use the SDK."""
        if self.reason or self.connections is None:
            return False
        try:
            query, authorization = self.auth.current()
        except Exception as exc:  # any credential failure: the SDK path reports it
            self._switch_off(f"its credential failed ({type(exc).__name__})")
            return False
        headers = {
            "x-ms-version": self.version,
            "x-ms-date": formatdate(usegmt=True),
            "x-ms-page-write": "update",
            "x-ms-range": f"bytes={offset}-{offset + len(view) - 1}",
            "x-ms-client-request-id": str(uuid.uuid4()),
            "Content-Length": str(len(view)),
            "User-Agent": self.agent,
        }
        if authorization:
            headers["Authorization"] = authorization
        if md5 is not None:
            headers["Content-MD5"] = base64.b64encode(md5).decode()
        url = f"{self.path}?comp=page&{query}" if query else f"{self.path}?comp=page"
        try:
            status, code = self._send(url, view, headers)
        except (OSError, http.client.HTTPException) as exc:
            self._failed(f"requests failed ({type(exc).__name__})")
            return False
        if status == 201:
            if self.failures:
                with self.lock:
                    self.failures = 0
            return True
        why = f"the service answered {status} {code}".rstrip()
        if 400 <= status < 500 and code != "Md5Mismatch":  # damaged on the way: may not recur
            self._switch_off(why)
        else:
            self._failed(why)
        return False

    def _send(self, url: str, body: memoryview, headers: dict[str, str]) -> tuple[int, str]:
        """Send one request and read its whole answer: (status, x-ms-error-code); a kept-alive
        connection that fails before answering is replaced once."""
        assert self.connections is not None
        while True:
            conn, reused = self.connections.take()
            try:
                conn.request("PUT", url, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused and isinstance(exc, CLOSED_WHILE_IDLE):
                    continue  # the service closed it while idle: once more on a new one
                raise
            if response.will_close:
                conn.close()
            else:
                self.connections.give(conn)
            if response.status == 201:
                return 201, ""
            return response.status, response.getheader("x-ms-error-code") or ""

    def _failed(self, why: str) -> None:
        with self.lock:
            self.failures += 1
            if self.failures >= MAX_FAILURES:
                self.reason = self.reason or f"{MAX_FAILURES} puts in a row failed: {why}"

    def _switch_off(self, why: str) -> None:
        with self.lock:
            self.reason = self.reason or why

    def close(self) -> None:
        """Close the kept-alive connections."""
        if self.connections is not None:
            self.connections.close()


__all__ = ["Connections", "DirectPutter"]
