"""A reference to one Azure resource a step made or uses (what state records and destroy reads)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ResourceRef(BaseModel):
    """One Azure resource a step's result consists of.

    `created_by_run` is the run id that created it (read back from the resource's tags
    when a step adopts it after a crash), or None when the resource existed before this
    pipeline touched it: destroy and cleanup delete only refs with a run id.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Azure resource id (or URL for a blob).")
    kind: str = Field(description="What it is, e.g. Microsoft.Compute/virtualMachines.")
    created_by_run: str | None = Field(
        default=None, description="Run id that created it; None if it pre-existed."
    )
