"""The connection file (`<folder>/connection.json`): everything a client needs to reach a
running sandbox, and the shell exports `batchimage sandbox env` prints from it."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from batchimage.sandbox.errors import SandboxError

FILE_NAME = "connection.json"
BATCH_SCOPE = "https://batch.core.windows.net//.default"


@dataclass(frozen=True)
class Connection:
    """How to reach one running sandbox (ARM, token endpoint, Batch, Azurite, identity)."""

    folder: str
    pid: int
    port: int
    arm_endpoint: str
    authority_host: str
    token_endpoint: str
    tenant_id: str
    client_id: str
    client_secret: str
    subscription_id: str
    location: str
    resource_group: str
    storage_account: str
    batch_account: str
    ca_bundle: str
    blob_endpoint_root: str
    batch_endpoint_root: str
    azurite_port: int
    polling_interval: float
    cloud: str = "public"  # the cloud the sandbox models (config `cloud`)
    time_scale: float = 1.0  # real seconds per simulated second, when it started

    @property
    def arm_scope(self) -> str:
        """The token scope for ARM calls to this sandbox."""
        return f"{self.arm_endpoint}/.default"

    @property
    def batch_scope(self) -> str:
        return BATCH_SCOPE

    def blob_endpoint(self, account: str) -> str:
        return f"{self.blob_endpoint_root}/{account}/"

    def batch_endpoint(self, account: str) -> str:
        """What the Batch account reports as accountEndpoint (host:port/batch/<account>)."""
        return f"{self.batch_endpoint_root}/{account}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Connection:
        names = {f.name for f in fields(cls)}
        optional = {f.name for f in fields(cls) if f.default is not MISSING}
        missing = names - optional - set(data)
        if missing:
            raise SandboxError(
                f"sandbox connection file lacks {sorted(missing)}; restart the sandbox"
            )
        return cls(**{k: data[k] for k in names if k in data})

    def env(self) -> dict[str, str]:
        """Environment variables a plain azure-identity / azure-mgmt script needs."""
        return {
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "AZURE_SUBSCRIPTION_ID": self.subscription_id,
            "BATCHIMAGE_ARM_ENDPOINT": self.arm_endpoint,
            "BATCHIMAGE_SANDBOX_LOCATION": self.location,
            "BATCHIMAGE_SANDBOX_RESOURCE_GROUP": self.resource_group,
            "BATCHIMAGE_SANDBOX_STORAGE_ACCOUNT": self.storage_account,
            "BATCHIMAGE_SANDBOX_BATCH_ACCOUNT": self.batch_account,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
        }


def connection_path(folder: Path) -> Path:
    return folder / FILE_NAME


def read_connection(folder: Path) -> Connection | None:
    """The connection file's content, or None when there is none."""
    path = connection_path(folder)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SandboxError(f"sandbox connection file {path} is unreadable: {exc}") from exc
    return Connection.from_json(data)


def write_connection(folder: Path, conn: Connection) -> None:
    """Write the connection file atomically, readable by the owner only (it holds a secret)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".connection-", dir=folder)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(conn.to_json(), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, connection_path(folder))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
