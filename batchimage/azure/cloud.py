"""Cloud profiles: where a cloud's endpoints are and how to authenticate to it.

Built-in: Azure public, Azure US Government, Azure China; `custom()` for any ARM endpoint
(e.g. Azure Stack Hub; `from_metadata()` reads its `/metadata/endpoints`); `sandbox()`
for the local Azure, from its connection file. The tool reaches every cloud the same way,
through a profile; nothing else knows which cloud it talks to.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from batchimage.core.errors import UsageError


class SandboxConnection(Protocol):
    """What a sandbox profile is made from: its connection file's fields (read-only)."""

    @property
    def arm_endpoint(self) -> str: ...

    @property
    def authority_host(self) -> str: ...

    @property
    def ca_bundle(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def client_secret(self) -> str: ...

    @property
    def subscription_id(self) -> str: ...

    @property
    def time_scale(self) -> float: ...

    @property
    def cloud(self) -> str: ...

    @property
    def arm_scope(self) -> str: ...

    @property
    def batch_scope(self) -> str: ...


BATCH_SCOPE = "https://batch.core.windows.net//.default"
MIN_POLL_S = 0.005  # the shortest wait between two polls (a fast sandbox clock)
# An SDK poller's wait where Azure's answer asks for none (many do: run commands, gallery
# versions, a VM's operation after its first poll; azure-core's own default is 30 s).
SDK_POLL_S = 10.0
SANDBOX_SCRIPT_NOTE = (
    "the sandbox does not run scripts: it records this one and reports exit code 0 unless "
    "a download in it fails or it reads an unset variable; to simulate a failing script, "
    'add a compute.script_failures rule (docs/sandbox-compute.md, "Configuration")'
)


@dataclass(frozen=True)
class CloudProfile:
    """Endpoints, token scopes, TLS trust and (for the sandbox) the service principal;
    `unmanaged_disks`: whether the cloud still serves VMs on unmanaged (VHD) disks - public
    Azure retired them (no new ones since 2024, none start after 31 March 2026), Azure
    Stack Hub and other custom clouds keep them."""

    name: str
    arm_endpoint: str
    authority_host: str
    arm_scope: str
    batch_scope: str = BATCH_SCOPE
    storage_suffix: str = "core.windows.net"
    ca_bundle: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    subscription_id: str | None = None
    disable_instance_discovery: bool = False
    # Real seconds per second of Azure's time: 1, but the sandbox's time scale there (so
    # the tool's waits between polls, chosen in Azure's seconds, keep pace with it).
    time_scale: float = 1.0
    unmanaged_disks: bool = True
    # Said beside every customize script run in this cloud, when the cloud treats scripts
    # otherwise than Azure does (the sandbox runs none); the tool prints it, nothing more.
    script_note: str | None = None

    @property
    def verify(self) -> str | bool:
        """What to pass as `connection_verify`: the CA bundle path, or True (system trust)."""
        return self.ca_bundle or True

    def vault_url(self, secret_uri: str) -> str:
        """Where the vault of a Key Vault secret URI is reached: the URI's own origin, or in
        the sandbox its Key Vault endpoint for the vault (the host's first label)."""
        parts = urlsplit(secret_uri)
        if self.name != "sandbox":
            return f"{parts.scheme}://{parts.netloc}"
        host = (parts.hostname or "").lower()
        # the sandbox is public Azure's: another cloud's vault host (or a typo) reaches no
        # vault, as in Azure it would resolve to none
        vault = host.removesuffix(".vault.azure.net") if host.endswith(".vault.azure.net") else host
        return f"{self.arm_endpoint.rstrip('/')}/keyvault/{vault}"


def custom(
    arm_endpoint: str,
    authority_host: str,
    *,
    audience: str | None = None,
    ca_bundle: str | None = None,
    storage_suffix: str = "core.windows.net",
    batch_scope: str = BATCH_SCOPE,
    name: str = "custom",
    unmanaged_disks: bool = True,
) -> CloudProfile:
    """A profile for an ARM endpoint (a built-in cloud, Azure Stack Hub, a private cloud)."""
    arm = arm_endpoint.rstrip("/")
    scope_base = (audience or arm).rstrip("/")
    return CloudProfile(
        name=name,
        arm_endpoint=arm,
        authority_host=authority_host.rstrip("/"),
        arm_scope=f"{scope_base}/.default",
        batch_scope=batch_scope,
        storage_suffix=storage_suffix,
        ca_bundle=ca_bundle,
        unmanaged_disks=unmanaged_disks,
    )


PUBLIC = custom(
    "https://management.azure.com",
    "https://login.microsoftonline.com",
    name="public",
    unmanaged_disks=False,
)
US_GOVERNMENT = custom(
    "https://management.usgovcloudapi.net",
    "https://login.microsoftonline.us",
    batch_scope="https://batch.core.usgovcloudapi.net//.default",
    storage_suffix="core.usgovcloudapi.net",
    name="usgov",
)
CHINA = custom(
    "https://management.chinacloudapi.cn",
    "https://login.chinacloudapi.cn",
    batch_scope="https://batch.chinacloudapi.cn//.default",
    storage_suffix="core.chinacloudapi.cn",
    name="china",
)
ALIASES = {
    "public": PUBLIC,
    "azurecloud": PUBLIC,
    "azure": PUBLIC,
    "usgov": US_GOVERNMENT,
    "azureusgovernment": US_GOVERNMENT,
    "china": CHINA,
    "azurechinacloud": CHINA,
}


def from_metadata(
    arm_endpoint: str, ca_bundle: str | None = None, timeout: float = 10.0
) -> CloudProfile:
    """A custom profile from the cloud's `<arm>/metadata/endpoints` document."""
    arm = arm_endpoint.rstrip("/")
    url = f"{arm}/metadata/endpoints?api-version=2022-09-01"
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            meta = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read cloud metadata from {url}: {exc}") from exc
    if isinstance(meta, list):  # the 2022-09-01 format lists clouds; pick ours
        meta = next((m for m in meta if m.get("resourceManager", "").rstrip("/") == arm), meta[0])
    auth = meta.get("authentication", {})
    audiences = auth.get("audiences") or [arm]
    return custom(
        arm,
        auth.get("loginEndpoint", PUBLIC.authority_host),
        audience=audiences[0],
        ca_bundle=ca_bundle,
        storage_suffix=meta.get("suffixes", {}).get("storage", "core.windows.net"),
    )


def sandbox(conn: SandboxConnection) -> CloudProfile:
    """The profile of a running sandbox (from its connection file)."""
    return CloudProfile(
        name="sandbox",
        arm_endpoint=conn.arm_endpoint,
        authority_host=conn.authority_host,
        arm_scope=conn.arm_scope,
        batch_scope=conn.batch_scope,
        storage_suffix="127.0.0.1",
        ca_bundle=conn.ca_bundle,
        tenant_id=conn.tenant_id,
        client_id=conn.client_id,
        client_secret=conn.client_secret,
        subscription_id=conn.subscription_id,
        disable_instance_discovery=True,
        time_scale=conn.time_scale,
        unmanaged_disks=conn.cloud != "public",
        script_note=SANDBOX_SCRIPT_NOTE,
    )


def resolve(cloud: str) -> CloudProfile:
    """A profile by name ('public', 'usgov', 'china') or ARM endpoint URL; the sandbox's is
    `sandbox(connection)`, given the connection of a running one."""
    key = cloud.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    if key.startswith("https://"):
        return from_metadata(cloud)
    raise UsageError(
        f"unknown cloud {cloud!r}: use public, usgov, china, sandbox or an https:// ARM endpoint"
    )


def scaled(profile: Any, seconds: float) -> float:
    """`seconds` of Azure's time on `profile`'s clock (times its time scale: 1 in Azure,
    the sandbox's scale there), at least `MIN_POLL_S`."""
    return max(MIN_POLL_S, seconds * float(getattr(profile, "time_scale", 1.0)))
