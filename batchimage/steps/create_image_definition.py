"""Step `capture.definition`: the gallery image definition (OS type and state, Hyper-V
generation, security type, identifier, purchase plan carried from the base image). An
existing definition is used as is when compatible; one that cannot take the image fails
with what differs (those properties cannot change)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import Field

from batchimage.azure.arm import DEFINITION, GALLERY, tags_of, text
from batchimage.azure.galleries import read_definition, write_definition
from batchimage.azure.shared import holding
from batchimage.core.errors import PermanentAzureError
from batchimage.spec import ImageDefinition
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.create_gallery import CreateGallery
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.gallery import (
    WantedDefinition,
    definition_problems,
    security_type_of,
    wanted_definition,
)
from batchimage.steps.marks import observed, owned, ref_for, resource_tags
from batchimage.steps.resolve_image import ResolveImage


class DefinitionOutputs(Outputs):
    """The image definition."""

    id: str
    name: str
    gallery: str
    group: str
    os_type: str
    os_state: str
    hyper_v_generation: str
    security_type: str = "Standard"  # its SecurityType feature (Standard: none)


class DefinitionInputs(StepInputs):
    """The spec's definition, region and tags; read, not hashed: where the gallery is and
    the properties the image needs (its purchase plan comes from the base image)."""

    definition: ImageDefinition
    location: str
    tags: dict[str, str]
    gallery: str = Field(exclude=True)
    group: str = Field(exclude=True)
    wanted: WantedDefinition = Field(exclude=True)


class CreateImageDefinition(DeletesCreated, Step[DefinitionOutputs]):
    """image.capture.gallery.definition in the gallery."""

    given: DefinitionInputs

    kind = "create_image_definition"
    key = "capture.definition"

    def __init__(self, spec: Any, gallery: CreateGallery) -> None:
        self.depends_on = (gallery, ResolveImage)
        self.given = DefinitionInputs(
            definition=spec.image.capture.gallery.definition,
            location=spec.location,
            tags=dict(spec.tags),
            gallery=gallery.given.name,
            group=gallery.given.group,
            wanted=wanted_definition(spec, None),
        )

    def _wanted(self, ctx: RunContext) -> WantedDefinition:
        return replace(self.given.wanted, plan=ctx.output(ResolveImage).plan)

    def _read(self, ctx: RunContext) -> Any:
        return read_definition(
            ctx.clients, self.given.group, self.given.gallery, self.given.definition.name
        )

    def check(self, ctx: RunContext) -> DefinitionOutputs | None:
        found = self._read(ctx)
        if found is None or text(found.provisioning_state) != "Succeeded":
            return None
        problems = definition_problems(found, self._wanted(ctx))
        if problems:
            raise PermanentAzureError(
                f"image definition {self.given.definition.name} cannot take this image: "
                f"{'; '.join(problems)}. These cannot change: use a new definition name",
                code="IncompatibleImageDefinition",
            )
        tags = tags_of(found)
        return DefinitionOutputs(
            id=found.id,
            name=found.name,
            gallery=self.given.gallery,
            group=self.given.group,
            os_type=text(found.os_type),
            os_state=text(found.os_state),
            hyper_v_generation=text(found.hyper_v_generation or "V1"),
            security_type=security_type_of(found),
            resources=(ref_for(ctx, found.id, DEFINITION, tags),),
            observed_fingerprint=observed(ctx, tags),
        )

    def apply(self, ctx: RunContext) -> DefinitionOutputs | None:
        # under the gallery's lock: not while another spec's run deletes the gallery
        with holding(ctx.clients, GALLERY, self.given.group, self.given.gallery):
            return self._apply(ctx)

    def _apply(self, ctx: RunContext) -> DefinitionOutputs | None:
        found = self._read(ctx)
        if found is not None and not owned(ctx, tags_of(found)):
            return None
        tags = resource_tags(ctx, self.given.tags, tags_of(found) if found is not None else None)
        body = self._wanted(ctx).body(self.given.location, tags, self.given.definition.description)
        write_definition(
            ctx, self.given.group, self.given.gallery, self.given.definition.name, body
        )
        return None

    def input_words(self, name: str) -> str | None:
        if name == f"@{ResolveImage.key}":  # the plan it carries; a new version: its tag only
            return "the base image"
        return None

    def describe(self) -> str:
        return f"image definition {self.given.definition.name}"
