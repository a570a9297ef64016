"""Azurite launcher: starts a real Azurite that the blob SDK can use over HTTPS."""

from __future__ import annotations

from azure.storage.blob import BlobServiceClient

from tests.conftest import AzuriteAccount


def test_blob_roundtrip_over_https(azurite: AzuriteAccount) -> None:
    service = BlobServiceClient(
        azurite.blob_endpoint, credential=azurite.credential, connection_verify=azurite.ca_bundle
    )
    container = service.get_container_client("roundtrip")
    container.create_container()
    container.upload_blob("hello.txt", b"hello")
    assert container.download_blob("hello.txt").readall() == b"hello"
    container.delete_container()
