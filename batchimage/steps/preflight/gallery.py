"""Check: the gallery and image definition exist or will be created, and an existing
definition can take this image (OS type and state, Hyper-V generation, security type, plan)."""

from __future__ import annotations

from batchimage.azure.galleries import read_definition, read_gallery
from batchimage.core.errors import AzureError, TransientAzureError
from batchimage.steps.gallery import definition_problems, wanted_definition
from batchimage.steps.preflight.facts import Facts
from batchimage.steps.preflight.report import CheckResult, fail, ok


def check_gallery(facts: Facts) -> list[CheckResult]:
    """One result for the gallery and one for the definition."""
    spec = facts.spec
    gallery = spec.image.capture.gallery
    group = gallery.resource_group or spec.resource_group
    found = read_gallery(facts.clients, group, gallery.gallery)
    if found is None:
        return [
            ok("gallery", f"{gallery.gallery} will be created in {group} ({spec.location})"),
            ok("image definition", f"{gallery.definition.name} will be created"),
        ]
    results = [ok("gallery", f"{gallery.gallery} exists in {group}")]
    name = gallery.definition.name
    raw = read_definition(facts.clients, group, gallery.gallery, name)
    plan = None
    if spec.image.base.marketplace is not None:
        try:
            plan = facts.marketplace().plan
        except TransientAzureError:
            raise
        except AzureError:
            plan = None  # the base image check reports it
    if raw is None:
        results.append(ok("image definition", f"{name} will be created"))
        return results
    problems = definition_problems(raw, wanted_definition(spec, plan))
    if problems:
        results.append(
            fail(
                "image definition",
                f"{name} exists but cannot take this image: {'; '.join(problems)}. These "
                "properties cannot change: use a new definition name in "
                "image.capture.gallery.definition.name",
            )
        )
    else:
        results.append(ok("image definition", f"{name} exists and matches the image"))
    return results
