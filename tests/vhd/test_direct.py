"""The upload's direct puts (http.client, the blob client's own credential) against Azurite, and
the fallback to the SDK when the direct path cannot serve a put."""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobClient, BlobSasPermissions, ContainerClient, generate_blob_sas

from batchimage.azure.vhd.direct import IDLE_CHECK, DirectPutter, _behind_proxy
from batchimage.azure.vhd.upload import find_uploaded, upload_vhd
from tests.conftest import AzuriteAccount
from tests.vhd.conftest import BlobFactory, Recorder, written
from tests.vhd.images import MIB, make_fixed_vhd, seeded_bytes, sparse_layout


@pytest.fixture
def sparse_vhd(tmp_path: Path) -> Path:
    return make_fixed_vhd(tmp_path / "sparse.vhd", 9 * MIB, sparse_layout())


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TokenCredential:
    """An Entra ID-shaped credential: unsigned JWTs, which Azurite's basic OAuth check accepts
    when issuer, audience and lifetime are right; counts the tokens it hands out."""

    def __init__(self, lifetime: int) -> None:
        self.lifetime = lifetime
        self.issued = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        assert scopes == ("https://storage.azure.com/.default",)
        self.issued += 1
        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + self.lifetime,
        }
        token = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2ln"
        return AccessToken(token, now + self.lifetime)


def _blob(azurite: AzuriteAccount, container: ContainerClient, credential: Any) -> BlobClient:
    return BlobClient(
        azurite.blob_endpoint,
        container.container_name,
        "disk.vhd",
        credential=credential,
        connection_verify=azurite.ca_bundle,
    )


def test_account_key_client_puts_directly_with_a_write_only_sas(
    sparse_vhd: Path, make_blob: BlobFactory
) -> None:
    recorder = Recorder()
    blob = make_blob(recorder=recorder)
    result = upload_vhd(sparse_vhd, blob)
    assert result.direct_requests == result.requests == len(recorder.page_puts) > 0
    puts = [url for method, url, _ in recorder.requests if method == "PUT" and "comp=page" in url]
    assert all("sp=w&" in query and "sig=" in query for query in puts)
    assert blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_sas_url_client_puts_directly(
    sparse_vhd: Path, azurite: AzuriteAccount, container: ContainerClient
) -> None:
    sas = generate_blob_sas(
        azurite.name,
        container.container_name,
        "disk.vhd",
        account_key=azurite.key,
        permission=BlobSasPermissions(read=True, write=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    url = f"{azurite.blob_endpoint}{container.container_name}/disk.vhd?{sas}"
    blob = BlobClient.from_blob_url(url, connection_verify=azurite.ca_bundle)
    result = upload_vhd(sparse_vhd, blob)
    assert result.direct_requests == result.requests > 0 and not result.direct_off
    assert blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_token_client_puts_directly_and_renews_a_token_near_expiry(
    sparse_vhd: Path, azurite: AzuriteAccount, container: ContainerClient
) -> None:
    lasting = TokenCredential(lifetime=3600)
    result = upload_vhd(sparse_vhd, _blob(azurite, container, lasting), workers=2)
    assert result.direct_requests == result.requests > 1 and not result.direct_off
    assert lasting.issued <= 3  # the SDK's own requests and the direct path: once each

    expiring = TokenCredential(lifetime=120)  # inside the renewal margin: renewed per put
    blob = _blob(azurite, container, expiring)
    blob.delete_blob()
    again = upload_vhd(sparse_vhd, blob, workers=1)
    assert again.direct_requests == again.requests and expiring.issued > again.requests
    assert blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_a_certificate_it_cannot_verify_falls_back_to_the_sdk(
    sparse_vhd: Path, make_blob: BlobFactory, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    recorder = Recorder()
    blob = make_blob(recorder=recorder)
    result = upload_vhd(sparse_vhd, blob, workers=1, verify=str(other_ca))
    assert result.direct_requests == 0 and "3 puts in a row failed" in result.direct_off
    assert "SSLCertVerificationError" in result.direct_off
    # three attempts that never got through TLS, then every put through the SDK
    assert len(recorder.page_puts) == result.requests + 3 and result.requests > 3
    assert blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_a_refused_direct_put_switches_to_the_sdk_for_the_rest(
    sparse_vhd: Path, make_blob: BlobFactory
) -> None:
    refused: list[str] = []

    def drop_sas(request: Any) -> None:  # the first direct put arrives without its SAS
        if "sig=" in request.url and not refused:
            refused.append(request.url)
            request.url = request.url.split("?")[0] + "?comp=page"

    recorder = Recorder(before=drop_sas)
    blob = make_blob(recorder=recorder)
    result = upload_vhd(sparse_vhd, blob, workers=1)
    assert refused and result.direct_requests == 0
    assert result.direct_off.startswith("the service answered 403")
    assert result.requests == len(recorder.page_puts) - 1 > 1  # the refused one, then the SDK
    assert blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_direct_puts_can_be_switched_off(sparse_vhd: Path, make_blob: BlobFactory) -> None:
    recorder = Recorder()
    blob = make_blob(recorder=recorder)
    result = upload_vhd(sparse_vhd, blob, direct=False)
    assert result.direct_requests == 0 and result.direct_off == "switched off by the caller"
    assert result.requests == len(recorder.page_puts) > 0
    assert not any("sig=" in url for _, url, _ in recorder.requests)
    assert blob.download_blob().readall() == sparse_vhd.read_bytes()


def test_a_proxy_in_the_environment_leaves_puts_to_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    url = "https://acct.blob.core.windows.net/c/disk.vhd"
    assert not _behind_proxy(url)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert _behind_proxy(url)
    monkeypatch.setenv("NO_PROXY", ".core.windows.net")
    assert not _behind_proxy(url)


def test_a_copied_file_with_the_same_content_is_not_uploaded_again(
    sparse_vhd: Path, make_blob: BlobFactory
) -> None:
    first = upload_vhd(sparse_vhd, make_blob())
    stat = sparse_vhd.stat()
    os.utime(sparse_vhd, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as `cp` would
    assert find_uploaded(sparse_vhd, make_blob()) is None  # a read-only check cannot tell

    recorder = Recorder()
    again = upload_vhd(sparse_vhd, make_blob(recorder=recorder))
    assert again.skipped_upload and again.digest == first.digest and again.bytes_sent == 0
    assert [method for method, _, _ in recorder.writes] == ["PUT"]  # the metadata, once
    assert recorder.writes[0][1] == "comp=metadata"
    assert find_uploaded(sparse_vhd, make_blob()) is not None  # the new mtime is recorded


def test_a_changed_file_with_the_same_samples_is_uploaded_again(
    tmp_path: Path, make_blob: BlobFactory
) -> None:
    path = make_fixed_vhd(tmp_path / "disk.vhd", 9 * MIB, sparse_layout())
    blob = make_blob()
    upload_vhd(path, blob)
    with path.open("r+b") as handle:  # 5 MiB + 100: between two of the 32 sampled spots
        handle.seek(5 * MIB + 100)
        handle.write(b"changed")
    result = upload_vhd(path, blob)
    assert result.restarted and not result.skipped_upload
    assert blob.download_blob().readall() == path.read_bytes()


def _closed_by_service(conn: Any) -> None:
    """Close `conn` as a service closing an idle kept-alive connection would: our side ends
    its writing, the service answers by closing its side (waited for, up to 10 s)."""
    conn.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 10
    while not select.select([conn.sock], [], [], 0.1)[0]:
        assert time.monotonic() < deadline, "the service did not close the connection"


@pytest.mark.parametrize("idle_long", [True, False], ids=["checked-before-use", "failed-in-use"])
def test_a_kept_alive_connection_the_service_closed_is_replaced(
    make_blob: BlobFactory, monkeypatch: pytest.MonkeyPatch, idle_long: bool
) -> None:
    recorder = Recorder()
    blob = make_blob(recorder=recorder)
    blob.create_page_blob(MIB)
    putter = DirectPutter.for_blob(blob, verify=None, workers=1)
    page = memoryview(seeded_bytes(1, 1024))
    assert putter.put(page, 0)
    assert putter.connections is not None
    [(conn, since)] = putter.connections.idle
    _closed_by_service(conn)
    if idle_long:  # idle past the check: found closed before any request is sent on it
        putter.connections.idle[0] = (conn, since - IDLE_CHECK)
    assert putter.put(page, 1024) and putter.enabled and not putter.failures
    [(fresh, _)] = putter.connections.idle
    assert fresh is not conn and conn.sock is None
    sent = 2 if idle_long else 3  # a request that found the connection closed, sent again
    assert len(recorder.page_puts) == sent
    assert written(blob) == [(0, 2048)]
    putter.close()
