"""Step `capture.release`: with `capture.gallery.exclude_from_latest: until_rolled_out`, the
new image version is created out of the definition's "latest"; once every pool runs it
(after each pool's retire step) this step includes it: a PATCH of its publishing profile
with `excludeFromLatest: false` (the version's own storage profile sent along, as
GalleryImageVersions_Update requires). `check` observes the flag; `apply` flips it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchimage.azure.arm import text
from batchimage.azure.gallery_versions import include_in_latest, read_version
from batchimage.steps.base import RunContext, Step
from batchimage.steps.create_image_definition import CreateImageDefinition
from batchimage.steps.create_image_version import CreateImageVersion
from batchimage.steps.pool_common import DriftOutputs
from batchimage.steps.verbs import UPDATE


class ReleaseOutputs(DriftOutputs):
    """The version the definition's "latest" may now resolve to."""

    version: str


class ReleaseImageVersion(Step[ReleaseOutputs]):
    """Include the rolled-out image version in the definition's latest."""

    kind = "release_image_version"
    key = "capture.release"
    verb = UPDATE

    def __init__(
        self,
        definition: CreateImageDefinition,
        version: CreateImageVersion,
        rollout: tuple[type[Step[Any]] | Step[Any], ...],
    ) -> None:
        """`rollout`: the steps after which every pool runs the version (retire steps)."""
        self.definition = definition
        self.version = version
        self.depends_on = (definition, version, *rollout)

    def describe(self) -> str:
        return "include the new image version in latest once every pool runs it"

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        if changing.get(self.version.key) not in ("create", "replace"):
            return None
        return "update", "after the rollout: the new image version joins latest"

    def _read(self, ctx: RunContext) -> Any:
        d = ctx.output(self.definition)
        name = ctx.output(self.version).version
        return read_version(ctx.clients, d.group, d.gallery, d.name, name)

    def check(self, ctx: RunContext) -> ReleaseOutputs | None:
        raw = self._read(ctx)
        if raw is None:
            return None
        name = text(raw.name)
        if getattr(raw.publishing_profile, "exclude_from_latest", False):
            return ReleaseOutputs(
                version=name,
                drift=f"image version {name} is out of latest; every pool runs it now: apply "
                "will include it",
                drift_action="update",
            )
        return ReleaseOutputs(version=name, observed_fingerprint=ctx.fingerprint)

    def apply(self, ctx: RunContext) -> ReleaseOutputs | None:
        raw = self._read(ctx)
        if raw is None or not getattr(raw.publishing_profile, "exclude_from_latest", False):
            return None
        d = ctx.output(self.definition)
        ctx.say(f"including image version {text(raw.name)} in latest (every pool runs it)")
        include_in_latest(ctx, d.group, d.gallery, d.name, raw)
        return None
