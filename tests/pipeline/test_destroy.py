"""Destroy against the sandbox, in-process: a gallery this pipeline created but another
pipeline's image definition still lives in is kept (Azure refuses to delete a gallery with
nested resources: 409 CannotDeleteResource), said so, and destroy succeeds; once the other
pipeline is gone, destroying again deletes it."""

from __future__ import annotations

from typing import Any

from batchimage.azure.arm import GALLERY, _holds
from batchimage.core.refs import ResourceRef
from batchimage.state import StepStatus
from tests.pipeline.harness import Harness


def test_a_gallery_holding_another_pipelines_definition_is_kept(pipeline: Harness) -> None:
    first = pipeline.spec("quickstart.yaml")
    pipeline.apply(first)
    gallery = pipeline.outputs(first, "capture.gallery")
    gallery_id = next(r["id"] for r in gallery["resources"] if r["kind"] == GALLERY)
    name = gallery_id.rsplit("/", 1)[-1]

    def share(data: dict[str, Any]) -> None:
        data["image"]["capture"]["gallery"]["gallery"] = name
        data["image"]["capture"]["gallery"]["definition"]["name"] = "other-image"

    second = pipeline.spec("quickstart.yaml", share)
    pipeline.apply(second)
    other = pipeline.outputs(second, "capture.definition")["id"]

    result = pipeline.destroy(first)  # before: 409 CannotDeleteResource, on every retry
    assert result.kept == [
        f"capture.gallery: {name}: it still holds 1 image definition(s) of other pipelines "
        "(other-image); destroy again once they are gone to delete it"
    ]
    said = [e.message for e in pipeline.events.events if e.kind == "step_destroyed"]
    assert any(m.startswith(f"kept {name}: it still holds 1 image definition(s)") for m in said)
    assert pipeline.resource(gallery_id) is not None
    assert pipeline.resource(other) is not None
    record = pipeline.state(first).steps["capture.gallery"]
    assert record.status == StepStatus.DONE and [r.id for r in record.created] == [gallery_id]
    assert pipeline.state(first).steps["capture.definition"].status == StepStatus.DESTROYED

    pipeline.destroy(second)  # it did not create the gallery: it keeps it, without a word
    assert pipeline.resource(other) is None and pipeline.resource(gallery_id) is not None
    again = pipeline.destroy(first)
    assert again.kept == []
    assert pipeline.resource(gallery_id) is None
    assert pipeline.state(first).steps["capture.gallery"].status == StepStatus.DESTROYED


def test_a_gallery_already_gone_holds_nothing(pipeline: Harness) -> None:
    # A destroy resumed after its gallery delete: listing the gallery's definitions is a
    # 404 ParentResourceNotFound, which must read as "holds nothing", not fail the step.
    sub = pipeline.clients.subscription_id
    gone = f"/subscriptions/{sub}/resourceGroups/sandbox-rg/providers/Microsoft.Compute/galleries"
    gone += "/g_gone"
    assert _holds(pipeline.clients, ResourceRef(kind=GALLERY, id=gone)) == ""


def test_an_image_definition_holding_another_pipelines_version_is_kept(pipeline: Harness) -> None:
    first = pipeline.spec("quickstart.yaml")
    pipeline.apply(first)
    gallery = pipeline.outputs(first, "capture.gallery")["name"]
    definition_id = pipeline.outputs(first, "capture.definition")["id"]
    name = definition_id.rsplit("/", 1)[-1]

    def share(data: dict[str, Any]) -> None:  # the same gallery and image definition
        data["image"]["capture"]["gallery"]["gallery"] = gallery

    second = pipeline.spec("quickstart.yaml", share)
    pipeline.apply(second)
    other = pipeline.outputs(second, "capture.version")["version_id"]
    assert other.lower().startswith(definition_id.lower() + "/versions/")

    result = pipeline.destroy(first)  # before: 409 CannotDeleteResource on the definition
    version = other.rsplit("/", 1)[-1]
    assert result.kept[0] == (
        f"capture.definition: {name}: it still holds 1 image version(s) of other pipelines "
        f"({version}); destroy again once they are gone to delete it"
    )
    assert pipeline.resource(definition_id) is not None and pipeline.resource(other) is not None

    pipeline.destroy(second)
    again = pipeline.destroy(first)
    assert again.kept == []
    assert pipeline.resource(definition_id) is None
