"""Step `capture.managed_image`: also a managed image from the generalized build VM - an
artifact for consumers other than Batch (Batch pools take gallery images only)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from batchimage.azure.arm import IMAGE, tags_of, text
from batchimage.azure.images import read_image, write_image
from batchimage.core.errors import PermanentAzureError
from batchimage.core.ownership import Marks
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.deleting import DeletesCreated, delete
from batchimage.steps.generalize_vm import GeneralizeVm
from batchimage.steps.marks import observed, owned, ref_for, resource_tags
from batchimage.steps.names import image_fingerprint
from batchimage.steps.resolve_image import BasePin, ResolveImage, base_mark, made_from


class ManagedImageOutputs(Outputs):
    """The managed image."""

    image_id: str


class ManagedImageInputs(StepInputs):
    """The managed image's name and group, the image's fingerprint, the spec's tags; read,
    not hashed: its Hyper-V generation and region, the capture's time limit, the base's pin."""

    name: str
    group: str
    image: str
    tags: dict[str, str]
    hyper_v: str = Field(exclude=True)
    location: str = Field(exclude=True)
    timeout_s: int = Field(exclude=True)
    pin: BasePin = Field(exclude=True)


class CreateManagedImage(DeletesCreated, Step[ManagedImageOutputs]):
    """image.capture.managed_image, made from the build VM only when it must be (re)made."""

    given: ManagedImageInputs

    kind = "create_managed_image"
    key = "capture.managed_image"
    shown = ("image_id",)
    change = "replace"

    def __init__(self, spec: Any, group: Step[Any], generalize: GeneralizeVm) -> None:
        image = spec.image.capture.managed_image
        self.depends_on = (group,)
        self.reads = (ResolveImage,)  # the exact base: the image must be made from it
        self.apply_needs = (generalize,)
        self.given = ManagedImageInputs(
            name=image.name,
            group=image.resource_group or spec.resource_group,
            image=image_fingerprint(spec),
            tags=dict(spec.tags),
            hyper_v=spec.image.capture.gallery.definition.hyper_v_generation,
            location=spec.location,
            timeout_s=spec.timeouts.capture_s,
            pin=BasePin.of(spec),
        )
        self.other_base: str | None = None  # the last check found this image on another base

    def _read(self, ctx: RunContext) -> Any:
        return read_image(ctx, self.given.group, self.given.name)

    def check(self, ctx: RunContext) -> ManagedImageOutputs | None:
        self.other_base = None
        found = self._read(ctx)
        if found is None or text(found.provisioning_state) != "Succeeded":
            return None
        tags = tags_of(found)
        if not self._holds_image(ctx, tags):
            if tags.get(Marks.Tag.IMAGE) == self.given.image:
                self.other_base = "it holds this image built from another base: replaced"
            return None
        return ManagedImageOutputs(
            image_id=found.id,
            resources=(ref_for(ctx, found.id, IMAGE, tags),),
            observed_fingerprint=observed(ctx, tags),
        )

    def apply(self, ctx: RunContext) -> ManagedImageOutputs | None:
        found = self._read(ctx)
        if found is not None:
            if not owned(ctx, tags_of(found)):
                raise PermanentAzureError(
                    f"a managed image {self.given.name} that batchimage did not make already "
                    f"exists in {self.given.group}; choose another "
                    "image.capture.managed_image.name",
                    code="ImageExists",
                    status=409,
                )
            if not self._holds_image(ctx, tags_of(found)):
                ctx.say(f"managed image {self.given.name} holds an older image; replacing it")
                delete(ctx, ref_for(ctx, found.id, IMAGE, tags_of(found)))
        vm = ctx.output(GeneralizeVm)
        write_image(
            ctx,
            self.given.group,
            self.given.name,
            location=self.given.location,
            tags=resource_tags(ctx, self.given.tags, None, **self._marks(ctx)),
            vm_id=vm.vm_id,
            hyper_v=self.given.hyper_v,
            timeout_s=self.given.timeout_s,
        )
        return None

    def why_missing(self) -> str | None:
        return self.other_base

    def _holds_image(self, ctx: RunContext, tags: dict[str, str]) -> bool:
        """Tagged with this image's fingerprint, and made from this run's base image."""
        same = tags.get(Marks.Tag.IMAGE) == self.given.image
        return same and made_from(ctx, self.given.pin, tags, Marks.Tag.BASE)

    def _marks(self, ctx: RunContext) -> dict[str, str]:
        marks = {Marks.Tag.IMAGE: self.given.image}
        base = base_mark(ctx.output(ResolveImage))
        if base is not None:
            marks[Marks.Tag.BASE] = base
        return marks

    def describe(self) -> str:
        return f"managed image {self.given.name}"
