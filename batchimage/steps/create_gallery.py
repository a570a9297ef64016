"""Step `capture.gallery`: the Azure Compute Gallery the image goes to (used as is when it
exists; created in the spec's region otherwise)."""

from __future__ import annotations

from typing import Any

from batchimage.azure.arm import GALLERY, tags_of, text
from batchimage.azure.galleries import read_gallery, write_gallery
from batchimage.azure.shared import holding
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.create_group import CreateGroup
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.marks import observed, owned, ref_for, resource_tags


class GalleryOutputs(Outputs):
    """The gallery."""

    id: str
    name: str
    group: str
    location: str


class GalleryInputs(StepInputs):
    """The gallery's name and group, its region (when we create it), the spec's tags."""

    name: str
    group: str
    location: str
    tags: dict[str, str]


class CreateGallery(DeletesCreated, Step[GalleryOutputs]):
    """The gallery named in image.capture.gallery.gallery."""

    given: GalleryInputs

    kind = "create_gallery"
    key = "capture.gallery"

    def __init__(self, spec: Any, group: CreateGroup) -> None:
        gallery = spec.image.capture.gallery
        self.depends_on = (group,)
        self.given = GalleryInputs(
            name=gallery.gallery,
            group=gallery.resource_group or spec.resource_group,
            location=spec.location,
            tags=dict(spec.tags),
        )

    def check(self, ctx: RunContext) -> GalleryOutputs | None:
        found = read_gallery(ctx.clients, self.given.group, self.given.name)
        if found is None or text(found.provisioning_state) not in ("Succeeded", "None"):
            return None
        tags = tags_of(found)
        return GalleryOutputs(
            id=str(found.id),
            name=str(found.name),
            group=self.given.group,
            location=found.location,
            resources=(ref_for(ctx, str(found.id), GALLERY, tags),),
            observed_fingerprint=observed(ctx, tags),
        )

    def apply(self, ctx: RunContext) -> GalleryOutputs | None:
        with holding(ctx.clients, GALLERY, self.given.group, self.given.name):  # another spec's run
            self._apply(ctx)
        return None

    def _apply(self, ctx: RunContext) -> None:
        found = read_gallery(ctx.clients, self.given.group, self.given.name)
        if found is not None and not owned(ctx, tags_of(found)):
            return  # someone else's gallery: used as it is
        write_gallery(
            ctx,
            self.given.group,
            self.given.name,
            location=self.given.location,
            tags=resource_tags(ctx, self.given.tags, tags_of(found) if found is not None else None),
            description=f"Images built by batchimage pipeline {ctx.pipeline}",
        )

    def describe(self) -> str:
        return f"gallery {self.given.name}"
