"""The stage after the rollout, for `batchimage.steps.stages.STAGES`:

    capture.release   ReleaseImageVersion   the new version joins latest (only with
                                            exclude_from_latest: until_rolled_out)
    retention         RetainImageVersions   old versions no pool uses are deleted (only
                                            with capture.gallery.keep or keep_days)

Both run after every pool's retire step, so the pools run the new version first.
"""

from __future__ import annotations

from typing import Any

from batchimage.steps.base import Step
from batchimage.steps.create_image_definition import CreateImageDefinition
from batchimage.steps.create_image_version import CreateImageVersion
from batchimage.steps.image_pipeline import image_steps
from batchimage.steps.release_image_version import ReleaseImageVersion
from batchimage.steps.retain_image_versions import RetainImageVersions
from batchimage.steps.retire_pool import RetirePool


def retention_stage(spec: Any) -> list[Step[Any]]:
    """The release and retention steps `spec` asks for (none by default)."""
    gallery = spec.image.capture.gallery
    capture = image_steps(spec).capture
    definition = next(s for s in capture if isinstance(s, CreateImageDefinition))
    version = next(s for s in capture if isinstance(s, CreateImageVersion))
    rollout: tuple[type[Step[Any]] | Step[Any], ...] = (RetirePool,) if spec.pools else ()
    out: list[Step[Any]] = []
    if gallery.exclude_from_latest == "until_rolled_out":
        release = ReleaseImageVersion(definition, version, rollout)
        out.append(release)
        rollout = (*rollout, release)
    if gallery.retains:
        out.append(RetainImageVersions(spec, definition, version, rollout))
    return out
