"""Spec models for where and how a pipeline runs: cloud, state backend, timeouts, retry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from batchimage.spec.common import (
    ContainerName,
    HttpsUrl,
    InputFile,
    ResourceGroupName,
    SpecModel,
    StateFile,
    StorageAccountName,
    raise_rules,
)

CloudName = Literal["AzurePublicCloud", "AzureUSGovernment", "AzureChinaCloud", "sandbox"]


class CustomCloud(SpecModel):
    """A cloud given by its endpoints (Azure Stack Hub, a private cloud, a test double)."""

    name: str = Field(description="A label for this cloud, shown in messages.", min_length=1)
    arm_endpoint: HttpsUrl = Field(
        description="Azure Resource Manager endpoint, e.g. https://management.azure.com/."
    )
    authority_host: HttpsUrl | None = Field(
        None,
        description="Microsoft Entra ID authority, e.g. https://login.microsoftonline.com/; "
        "default: the public cloud's.",
    )
    arm_audience: str | None = Field(
        None,
        description="Token audience of ARM, e.g. https://management.core.windows.net/; "
        "default: arm_endpoint.",
    )
    batch_resource: str | None = Field(
        None,
        description="Token audience of the Batch data plane; default https://batch.core.windows.net/.",
    )
    storage_suffix: str | None = Field(
        None, description="Storage endpoint suffix, e.g. core.windows.net; default: from ARM."
    )
    ca_bundle: InputFile | None = Field(
        None,
        description="PEM file of extra certificate authorities to trust for this cloud's "
        "endpoints (relative to the spec's folder).",
    )


def _cloud_kind(value: Any) -> str:
    return "profile" if isinstance(value, (dict, CustomCloud)) else "named"


Cloud = Annotated[
    Annotated[CloudName, Tag("named")] | Annotated[CustomCloud, Tag("profile")],
    Discriminator(_cloud_kind),
]


class LocalState(SpecModel):
    """State kept in a local JSON file, locked against concurrent runs."""

    backend: Literal["local"] = Field("local", description="Keep state in a local file.")
    path: StateFile | None = Field(
        None,
        description="State file path (relative to the spec's folder); "
        "default .batchimage/state/<name>.json beside the spec.",
    )


class AzureBlobState(SpecModel):
    """State kept in a block blob, locked with a renewed blob lease."""

    backend: Literal["azure_blob"] = Field(description="Keep state in an Azure blob.")
    storage_account: StorageAccountName = Field(description="Storage account holding the state.")
    container: ContainerName = Field(description="Blob container holding the state.")
    blob: str | None = Field(
        None, description="Blob name; default <name>.json.", min_length=1, max_length=1024
    )
    resource_group: ResourceGroupName | None = Field(
        None, description="Resource group of the storage account; default: the spec's."
    )
    auth: Literal["key", "entra_id"] = Field(
        "key",
        description="How the blob is reached: key (the account's access key, listed through "
        "ARM: Microsoft.Storage/storageAccounts/listKeys/action) or entra_id (the run's own "
        "sign-in: Storage Blob Data Reader on the container for plan and status, Storage Blob "
        "Data Contributor for apply and destroy).",
    )
    lease_s: int = Field(
        60,
        ge=15,
        le=60,
        description="Seconds the blob lease lasts (15-60, renewed every third): how soon a "
        "crashed run's lock frees itself, and a run whose lease was broken stops.",
    )


def _state_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        backend = value.get("backend", "local")
        return backend if isinstance(backend, str) else None
    return getattr(value, "backend", None)


State = Annotated[
    Annotated[LocalState, Tag("local")] | Annotated[AzureBlobState, Tag("azure_blob")],
    Discriminator(
        _state_kind,
        custom_error_type="state_backend",
        custom_error_message="backend must be 'local' or 'azure_blob'",
    ),
]


class Timeouts(SpecModel):
    """How long each kind of step may take, in seconds, before it fails."""

    build_s: int = Field(1800, ge=60, le=86400, description="Create the build VM and network.")
    customize_step_s: int = Field(
        1800, ge=10, le=86400, description="One customize step (default for each step)."
    )
    generalize_s: int = Field(1800, ge=60, le=86400, description="Generalize and deallocate.")
    capture_s: int = Field(3600, ge=60, le=86400, description="Create the image version.")
    replication_s: int = Field(
        7200, ge=60, le=172800, description="Replicate the image version to every region."
    )
    vhd_upload_s: int = Field(
        14400, ge=60, le=172800, description="Upload a local VHD (vhd_file) to storage."
    )
    vhd_export_s: int = Field(7200, ge=60, le=172800, description="Export the image to a VHD.")
    pool_s: int = Field(
        1800, ge=60, le=86400, description="A pool reaching its wait_for state (resize included)."
    )
    delete_s: int = Field(1800, ge=60, le=86400, description="Delete one resource.")


class Retry(SpecModel):
    """How the engine retries a step that failed transiently (throttling, 5xx, timeouts)."""

    max_attempts: int = Field(6, ge=1, le=100, description="Attempts per step, the first included.")
    initial_delay_s: float = Field(
        2, gt=0, le=3600, description="Wait before the first retry; doubles each time."
    )
    max_delay_s: float = Field(60, gt=0, le=3600, description="Longest wait between attempts.")
    step_deadline_s: int = Field(
        3600, ge=1, le=172800, description="A step gives up retrying after this long overall."
    )

    @model_validator(mode="after")
    def _delays(self) -> Retry:
        if self.initial_delay_s > self.max_delay_s:
            raise_rules([(("initial_delay_s",), "must not exceed max_delay_s")])
        return self


def default_state_path(base_dir: Path, name: str) -> Path:
    """Where a local state file goes when the spec does not say: beside the spec."""
    return (base_dir / ".batchimage" / "state" / f"{name}.json").resolve()
