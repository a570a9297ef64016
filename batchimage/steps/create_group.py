"""Step `group.<name>`: a resource group the pipeline puts things in - used as is when it
exists (never deleted by us), else created, tagged, and deleted only when empty."""

from __future__ import annotations

from batchimage.azure.arm import GROUP, tags_of
from batchimage.azure.groups import read_group, write_group
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.marks import observed, owned, ref_for
from batchimage.steps.run_preflight import RunPreflight


class GroupOutputs(Outputs):
    """A resource group: its id and region."""

    id: str
    name: str
    location: str


class GroupInputs(StepInputs):
    """The group's name, region (when we create it) and the spec's tags."""

    name: str
    location: str
    tags: dict[str, str]


class CreateGroup(DeletesCreated, Step[GroupOutputs]):
    """Make sure resource group `name` exists (in the spec's region when we create it)."""

    given: GroupInputs

    kind = "create_group"
    depends_on = (RunPreflight,)

    def __init__(self, name: str, location: str, tags: dict[str, str]) -> None:
        self.given = GroupInputs(name=name, location=location, tags=dict(tags))
        self.key = f"group.{name}"

    def check(self, ctx: RunContext) -> GroupOutputs | None:
        found = read_group(ctx.clients, self.given.name)
        if found is None:
            return None
        tags = tags_of(found)
        return GroupOutputs(
            id=str(found.id),
            name=str(found.name),
            location=found.location,
            resources=(ref_for(ctx, str(found.id), GROUP, tags),),
            observed_fingerprint=observed(ctx, tags),
        )

    def apply(self, ctx: RunContext) -> GroupOutputs | None:
        found = read_group(ctx.clients, self.given.name)
        if found is not None and not owned(ctx, tags_of(found)):
            return None  # someone else's group: used as it is, never written
        tags = {**self.given.tags, **ctx.tags(tags_of(found) if found is not None else None)}
        write_group(ctx.clients, self.given.name, location=self.given.location, tags=tags)
        return None

    def describe(self) -> str:
        return f"resource group {self.given.name}"
