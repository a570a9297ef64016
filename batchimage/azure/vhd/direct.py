"""Put Page requests sent straight over urllib3: the upload's hot loop, at a third of the CPU.

    putter = DirectPutter.for_blob(blob, verify=ca_bundle, workers=8)
    if not putter.put(view, offset):        # False: send this range through the SDK instead
        blob.upload_page(view, offset, len(view))

The SDK's `BlobClient.upload_page` spends about 1.1 ms of client CPU per request in its
pipeline (a dozen policies, requests' session machinery, header (de)serialisation); the same
Put Page sent with urllib3 costs about 0.3 ms. A disk with many small data runs needs
thousands of puts, so the difference is most of the upload's CPU (see bench/vhd.md).

The putter uses the blob client's own credential: a SAS already in its URL, a short blob SAS
made from its account key (write only, renewed before it expires), or an Entra ID token from
its token credential. It never raises for a failed request: `put` returns False and the
caller sends the range through the SDK, which retries, maps errors and reports them. A
4xx answer (a credential or request the service refuses; not Md5Mismatch, which is damage on
the way), three failures in a row, an HTTP(S)
proxy in the environment or a credential of another kind switch the direct path off for the
rest of the upload (`reason` says why); Put Page is idempotent, so a range sent twice is
harmless.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import urllib3
    from azure.storage.blob import BlobClient

STORAGE_SCOPE = "https://storage.azure.com/.default"
SAS_LIFETIME = timedelta(hours=2)
RENEW_BEFORE = 600.0  # seconds: renew a SAS or token this long before it expires
MAX_FAILURES = 3


def _user_agent() -> str:
    import urllib3

    from batchimage import __version__

    return f"batchimage/{__version__} urllib3/{urllib3.__version__}"


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


class DirectPutter:
    """Sends Put Page requests for one blob over a urllib3 pool; thread-safe."""

    def __init__(
        self,
        blob: BlobClient,
        pool: urllib3.HTTPConnectionPool | None,
        reason: str,
        auth: _Auth | None = None,
    ):
        self.blob = blob
        self.pool = pool
        self.reason = reason  # why the direct path is off ("" while it is on)
        self.auth = auth or _Auth(blob)
        self.path = urlsplit(blob.url).path
        self.version = blob.api_version
        self.agent = _user_agent() if pool is not None else ""
        self.failures = 0
        self.lock = threading.Lock()

    @classmethod
    def for_blob(cls, blob: BlobClient, *, verify: bool | str | None, workers: int) -> DirectPutter:
        """A putter for `blob`, or a switched-off one when the direct path cannot serve it."""
        import urllib3

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
        if verify is True:
            verify = _default_verify()
        tls: dict[str, Any] = {}
        if urlsplit(blob.url).scheme == "https":
            tls = {"cert_reqs": "CERT_NONE"} if verify is False else {"ca_certs": verify}
        pool = urllib3.connection_from_url(
            blob.url,
            maxsize=workers,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=20.0, read=120.0),
            **tls,
        )
        return cls(blob, pool, "", auth)

    @property
    def enabled(self) -> bool:
        """True while puts go the direct way."""
        return not self.reason

    def put(self, view: memoryview, offset: int, md5: bytes | None = None) -> bool:
        """Put `view` at `offset`; True on 201 Created, False if the caller must use the SDK."""
        if self.reason or self.pool is None:
            return False
        import urllib3

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
            # urllib3 sends any buffer as is (no copy); its annotation names only bytes
            body = cast("bytes", view)
            response = self.pool.urlopen("PUT", url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            self._failed(f"requests failed ({type(exc).__name__})")
            return False
        status = response.status
        response.drain_conn()
        if status == 201:
            with self.lock:
                self.failures = 0
            return True
        code = response.headers.get("x-ms-error-code", "")
        why = f"the service answered {status} {code}".rstrip()
        if 400 <= status < 500 and code != "Md5Mismatch":  # damaged on the way: may not recur
            self._switch_off(why)
        else:
            self._failed(why)
        return False

    def _failed(self, why: str) -> None:
        with self.lock:
            self.failures += 1
            if self.failures >= MAX_FAILURES:
                self.reason = self.reason or f"{MAX_FAILURES} puts in a row failed: {why}"

    def _switch_off(self, why: str) -> None:
        with self.lock:
            self.reason = self.reason or why

    def close(self) -> None:
        """Close the pool's connections."""
        if self.pool is not None:
            self.pool.close()


__all__ = ["DirectPutter"]
