"""Spec models for the Batch pools that run on the image."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from batchimage.spec.common import (
    BatchAccountName,
    Checked,
    EnvName,
    HttpsUrl,
    Region,
    ResourceGroupName,
    Rule,
    SecretRef,
    SpecModel,
    SubnetId,
    Tags,
    VmSize,
    exactly_one,
    one_of_schema,
    raise_rules,
)

_SAS = re.compile(r"[?&]sig=")
HttpUrl = Annotated[str, Checked(r"https?://\S+", "use an http:// or https:// URL")]
FileMode = Annotated[str, Checked(r"0?[0-7]{3}", "use an octal mode like '0755'")]
RelativePath = Annotated[
    str, Checked(r"[^/\s\\][^\s\\]{0,254}", "use a relative folder like 'data' (no leading '/')")
]
PoolId = Annotated[str, Checked(r"[A-Za-z0-9_-]{1,55}", "use 1-55 letters, digits, '-' and '_'")]


class BatchAccountId(SpecModel):
    """A Batch account: its name and resource group."""

    name: BatchAccountName = Field(description="Batch account name.")
    resource_group: ResourceGroupName | None = Field(
        None, description="Resource group of the account; default: the spec's."
    )


class BatchAccountRef(BatchAccountId):
    """The Batch account a pool lives in (pool allocation mode: user subscription)."""

    location: Region | None = Field(
        None,
        description="Region of the account, when known; the image is replicated there "
        "(checked against capture.gallery.replicas).",
    )


class Autoscale(SpecModel):
    """Size the pool with an autoscale formula instead of fixed counts."""

    formula: str = Field(description="Batch autoscale formula.", min_length=1)
    interval_min: int = Field(
        15, ge=5, le=10080, description="Minutes between evaluations (5 to 10080)."
    )


class ResourceFile(SpecModel):
    """A file downloaded to each node before the start task runs."""

    model_config = one_of_schema("http_url", "storage_container_url", "auto_storage_container_name")

    http_url: HttpUrl | None = Field(None, description="URL of one file (no SAS token inline).")
    storage_container_url: HttpsUrl | None = Field(
        None, description="Blob container URL to download (no SAS token inline)."
    )
    auto_storage_container_name: str | None = Field(
        None, description="Container in the Batch account's auto-storage account."
    )
    blob_prefix: str | None = Field(None, description="Only blobs with this prefix (containers).")
    file_path: str | None = Field(
        None, description="Where on the node, relative to the task's working folder."
    )
    file_mode: FileMode | None = Field(None, description="Linux octal file mode, e.g. '0755'.")
    identity_reference: str | None = Field(
        None, description="Resource id of a user-assigned identity that can read the blobs."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ResourceFile:
        sources = ("http_url", "storage_container_url", "auto_storage_container_name")
        rules = exactly_one(self, sources, "a resource file")
        for name in ("http_url", "storage_container_url"):
            value = getattr(self, name)
            if value and _SAS.search(value):
                message = "the URL holds a SAS token; use identity_reference or auto storage"
                rules.append(((name,), message))
        raise_rules(rules)
        return self


class StartTask(SpecModel):
    """A task each node runs when it joins the pool."""

    command_line: str = Field(description="Command line of the start task.", min_length=1)
    resource_files: list[ResourceFile] = Field(
        default_factory=list, description="Files downloaded before the command runs."
    )
    environment: dict[EnvName, str] = Field(
        default_factory=dict, description="Environment variables (not secret: Batch shows them)."
    )
    wait_for_success: bool = Field(
        True, description="A node takes tasks only after its start task succeeded."
    )
    elevated: bool = Field(False, description="Run as the pool's administrator.")
    max_task_retry_count: int = Field(
        0, ge=-1, le=100, description="Retries of a failed start task (-1: unlimited)."
    )


class PoolNetwork(SpecModel):
    """Pool networking."""

    subnet_id: SubnetId | None = Field(None, description="Subnet the nodes join.")
    public_ip: Literal["batch_managed", "user_managed", "none"] = Field(
        "batch_managed",
        description="Public IPs: batch_managed (default), user_managed (public_ip_ids) or none "
        "(needs subnet_id).",
    )
    public_ip_ids: list[str] = Field(
        default_factory=list, description="Public IP resource ids, for user_managed."
    )

    @model_validator(mode="after")
    def _ip_mode(self) -> PoolNetwork:
        rules: list[Rule] = []
        if self.public_ip != "batch_managed" and self.subnet_id is None:
            rules.append((("subnet_id",), f"public_ip '{self.public_ip}' needs a subnet_id"))
        if self.public_ip == "user_managed" and not self.public_ip_ids:
            rules.append((("public_ip_ids",), "public_ip 'user_managed' needs public_ip_ids"))
        if self.public_ip != "user_managed" and self.public_ip_ids:
            rules.append((("public_ip_ids",), "only public_ip 'user_managed' takes this"))
        raise_rules(rules)
        return self


class _MountBase(SpecModel):
    relative_mount_path: RelativePath = Field(
        description="Mount folder under $AZ_BATCH_NODE_MOUNTS_DIR."
    )
    mount_options: str | None = Field(None, description="Extra mount options.")


class AzureBlobMount(_MountBase):
    """Mount a blob container with blobfuse (one of account_key, sas_key, identity)."""

    model_config = one_of_schema("account_key", "sas_key", "identity_reference")

    account_name: str = Field(description="Storage account name.", min_length=3)
    container_name: str = Field(description="Blob container name.", min_length=3)
    account_key: SecretRef | None = Field(None, description="Account key reference.")
    sas_key: SecretRef | None = Field(None, description="SAS token reference.")
    identity_reference: str | None = Field(
        None, description="Resource id of a user-assigned identity with access."
    )

    @model_validator(mode="after")
    def _one_credential(self) -> AzureBlobMount:
        names = ("account_key", "sas_key", "identity_reference")
        raise_rules(exactly_one(self, names, "an azure_blob mount"))
        return self


class AzureFilesMount(_MountBase):
    """Mount an Azure Files share."""

    account_name: str = Field(description="Storage account name.", min_length=3)
    share_url: HttpsUrl = Field(
        description="Share URL, e.g. https://acct.file.core.windows.net/share."
    )
    account_key: SecretRef = Field(description="Account key reference.")


class NfsMount(_MountBase):
    """Mount an NFS export."""

    source: str = Field(description="NFS source, e.g. 10.0.0.4:/export.", min_length=1)


class CifsMount(_MountBase):
    """Mount a CIFS/SMB share."""

    source: str = Field(description="Share, e.g. //server/share.", min_length=1)
    username: str = Field(description="User name.", min_length=1)
    password: SecretRef = Field(description="Password reference.")


class Mount(SpecModel):
    """One file system mounted on every node: exactly one of azure_blob, azure_files, nfs,
    cifs."""

    model_config = one_of_schema("azure_blob", "azure_files", "nfs", "cifs")

    azure_blob: AzureBlobMount | None = Field(None, description="A blob container (blobfuse).")
    azure_files: AzureFilesMount | None = Field(None, description="An Azure Files share.")
    nfs: NfsMount | None = Field(None, description="An NFS export.")
    cifs: CifsMount | None = Field(None, description="A CIFS/SMB share.")

    @model_validator(mode="after")
    def _one_kind(self) -> Mount:
        raise_rules(exactly_one(self, ("azure_blob", "azure_files", "nfs", "cifs"), "a mount"))
        return self


class SmokeTest(SpecModel):
    """A task run on a new pool before it replaces the old one; failing stops the rollout."""

    command_line: str = Field(description="Command line of the smoke test task.", min_length=1)
    timeout_s: int = Field(600, ge=10, le=86400, description="Limit for the smoke test.")


class Pool(SpecModel):
    """A Batch pool on the captured image (gallery image version)."""

    id: PoolId = Field(
        description="Pool id in the Batch account (at most 55 characters, leaving room for "
        "the rollout suffix)."
    )
    display_name: str | None = Field(None, description="Display name.", max_length=1024)
    batch_account: BatchAccountRef = Field(description="Batch account of the pool.")
    vm_size: VmSize = Field(description="Node VM size, e.g. Standard_D2s_v5.")
    node_agent_sku: str = Field(
        "auto",
        description="Batch node agent SKU id, or 'auto' (matched to the image's OS from the "
        "account's supported images).",
        min_length=1,
    )
    dedicated_nodes: int | None = Field(
        None, ge=0, le=10000, description="Fixed number of dedicated nodes."
    )
    spot_nodes: int | None = Field(
        None, ge=0, le=10000, description="Fixed number of Spot (low-priority) nodes."
    )
    autoscale: Autoscale | None = Field(
        None, description="Autoscale instead of fixed counts (excludes dedicated/spot_nodes)."
    )
    task_slots_per_node: int = Field(1, ge=1, le=256, description="Tasks run at once per node.")
    start_task: StartTask | None = Field(None, description="Task run on each node as it joins.")
    network: PoolNetwork = Field(default_factory=PoolNetwork, description="Networking.")
    mounts: list[Mount] = Field(default_factory=list, description="File systems to mount.")
    tags: Tags = Field(default_factory=dict, description="Azure tags on the pool resource.")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Batch pool metadata (name/value pairs)."
    )
    wait_for: Literal["none", "steady", "idle"] = Field(
        "steady",
        description="Wait until: none, steady (allocation done) or idle (nodes ready for tasks).",
    )
    resize_timeout_s: int = Field(
        900, ge=300, le=86400, description="Batch resize timeout for each allocation."
    )
    rollout: Literal["blue_green", "recreate"] = Field(
        "blue_green",
        description="On an image change: blue_green (new pool, wait healthy, retire old) or "
        "recreate (delete, then create).",
    )
    smoke_test: SmokeTest | None = Field(
        None, description="Task that must succeed on a new pool before it takes over."
    )

    @model_validator(mode="after")
    def _sizing(self) -> Pool:
        rules: list[Rule] = []
        counts = [n for n in ("dedicated_nodes", "spot_nodes") if getattr(self, n) is not None]
        if self.autoscale is not None:
            rules += [((n,), "autoscale excludes fixed node counts") for n in counts]
        elif not counts:
            rules.append(
                (
                    (),
                    "a fixed-size pool needs dedicated_nodes and/or spot_nodes (or give autoscale)",
                )
            )
        if self.smoke_test is not None and self.wait_for == "none":
            rules.append((("smoke_test",), "a smoke test needs wait_for 'steady' or 'idle'"))
        raise_rules(rules)
        return self
