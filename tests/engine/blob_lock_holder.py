"""Test helper process: take the lease on a state blob in Azurite, say so, then hold it.

Usage: python blob_lock_holder.py ENDPOINT ACCOUNT KEY CA CONTAINER BLOB LEASE_S SECONDS
Prints "locked" once the lease is held. Killed with SIGKILL, the lease is no longer
renewed and expires by itself after LEASE_S seconds.
"""

from __future__ import annotations

import sys
import time

from azure.storage.blob import ContainerClient

from batchimage.azure.state_store import AzureBlob
from batchimage.state import LockHolder
from batchimage.state.blob import BlobStateStore


def main() -> None:
    endpoint, account, key, ca, container, blob, lease_s, seconds = sys.argv[1:9]
    client = ContainerClient(
        endpoint,
        container,
        credential={"account_name": account, "account_key": key},
        connection_verify=ca,
    )
    store = BlobStateStore(AzureBlob(client, blob), lease_s=int(lease_s))
    store.lock(LockHolder(command="apply", run_id="blob-holder-run"))
    print("locked", flush=True)
    time.sleep(float(seconds))
    store.unlock()


if __name__ == "__main__":
    main()
