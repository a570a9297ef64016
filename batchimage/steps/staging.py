"""Which storage account stages files for the build VM: the first the spec already names
(the unmanaged OS disk's, the VHD export's, the VHD upload's), then a pool's Batch account
auto-storage account. The staging itself is the edge's (`batchimage.azure.staging`).

    places = StagingPlaces.of(spec)    # in the inputs of the steps that stage files
    account = staging_account(ctx, places)   # or PermanentAzureError NoStagingAccount
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from batchimage.azure.blobs import StorageAccount, find_account
from batchimage.azure.node_agents import batch_account_raw
from batchimage.core.errors import PermanentAzureError

if TYPE_CHECKING:
    from batchimage.steps.base import RunContext


def candidates(spec: object) -> list[tuple[str, str | None]]:
    """(account name, resource group) of accounts the spec names, in staging preference order."""
    image = spec.image  # type: ignore[attr-defined]
    out: list[tuple[str, str | None]] = []
    disk = image.build.os_disk
    if disk.type == "unmanaged" and disk.storage_account:
        out.append((disk.storage_account, spec.resource_group))  # type: ignore[attr-defined]
    if image.capture.vhd_export is not None:
        out.append(
            (image.capture.vhd_export.storage_account, image.capture.vhd_export.resource_group)
        )
    if image.base.vhd_file is not None:
        out.append((image.base.vhd_file.storage_account, image.base.vhd_file.resource_group))
    return out


class StagingPlaces(BaseModel):
    """Where a spec's files may be staged: the storage accounts it names (name, group), in
    preference order, then its pools' Batch accounts (group, name), for their auto-storage."""

    model_config = ConfigDict(frozen=True)

    accounts: tuple[tuple[str, str | None], ...]
    batch_accounts: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, spec: Any) -> StagingPlaces:
        """The staging places `spec` names."""
        batch = tuple(
            (p.batch_account.resource_group or spec.resource_group, p.batch_account.name)
            for p in spec.pools
        )
        return cls(accounts=tuple(candidates(spec)), batch_accounts=batch)


def staging_account(ctx: RunContext, places: StagingPlaces) -> StorageAccount:
    """The storage account that stages files for the build VM (see module doc); the error
    when there is none says what each place the spec names answered."""
    looked: list[str] = []
    for name, group in places.accounts:
        found = find_account(ctx.clients, name, group)
        if found is not None:
            return found
        looked.append(f"storage account {name} was not found")
    for group, name in places.batch_accounts:
        raw = batch_account_raw(ctx.clients, group, name)
        auto = getattr(raw, "auto_storage", None) if raw is not None else None
        account_id = getattr(auto, "storage_account_id", None)
        if raw is None:
            looked.append(f"Batch account {name} was not found in resource group {group}")
        elif not account_id:
            looked.append(f"Batch account {name} has no auto-storage account")
        else:
            parts = account_id.split("/")
            found = find_account(ctx.clients, parts[-1], parts[4])
            if found is not None:
                return found
            looked.append(f"auto-storage account {parts[-1]} of Batch account {name} was not found")
    answer = f"none was found ({'; '.join(looked)})" if looked else "the spec names none"
    raise PermanentAzureError(
        f"a file step needs a storage account to stage the file in, and {answer}: add "
        "image.capture.vhd_export with a storage account, or a pool whose Batch account has "
        "an auto-storage account",
        code="NoStagingAccount",
    )
