"""A slow uploader for the kill-and-resume test: one worker, a pause before each Put Page
(whether the SDK or the direct path sends it).

    python -m tests.vhd.upload_child ENDPOINT ACCOUNT KEY CA CONTAINER BLOB PATH DELAY

Prints `sent <bytes>` after each put (flushed) so the test can kill it midway.
"""

from __future__ import annotations

import http.client
import sys
import time
from typing import Any

import urllib3
from azure.storage.blob import BlobClient

from batchimage.azure.vhd.upload import UploadProgress, upload_vhd


def main(argv: list[str]) -> int:
    endpoint, account, key, ca, container, name, path, delay = argv

    def pause(url: str) -> None:
        if "comp=page" in url.partition("?")[2].split("&"):
            time.sleep(float(delay))

    pool_class = urllib3.connectionpool.HTTPConnectionPool
    urlopen = pool_class.urlopen

    def slow(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        pause(url)
        return urlopen(pool, method, url, *args, **kwargs)

    conn_class = http.client.HTTPConnection
    request = conn_class.request

    def slow_direct(conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        pause(url)
        request(conn, method, url, *args, **kwargs)

    pool_class.urlopen = slow  # type: ignore[method-assign]
    conn_class.request = slow_direct  # type: ignore[method-assign]
    blob = BlobClient(
        endpoint,
        container,
        name,
        credential={"account_name": account, "account_key": key},
        connection_verify=ca,
    )

    def show(progress: UploadProgress) -> None:
        print(f"sent {progress.sent}", flush=True)

    upload_vhd(path, blob, workers=1, progress=show)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
