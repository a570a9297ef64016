"""A file customize entry's staging step (`customize.<i>.stage`) and states written before
it existed: such a state has no record of it (the file was staged by customize.<i>'s own
apply). A finished pipeline's re-apply still writes nothing and plans no change; a run
stopped before customize.<i> resumes, staging the file first; one stopped with
customize.<i> in flight resumes without running it again. (That it runs beside the VM
build: tests/engine/test_eager.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.pipeline.harness import Harness

STAGE = "customize.1.stage"


def as_before(pipeline: Harness, spec: Path, **status: str) -> None:
    """Make the spec's state one the version before the staging step wrote: no record of
    it; each step in `status` given that status."""
    path = pipeline.store(spec).path
    doc: dict[str, Any] = json.loads(path.read_text())
    doc["steps"].pop(STAGE, None)
    for key, value in status.items():
        doc["steps"][key]["status"] = value
    path.write_text(json.dumps(doc))


def test_a_finished_pipeline_from_before_the_stage_step_stays_unchanged(
    pipeline: Harness,
) -> None:
    spec = pipeline.spec("quickstart.yaml")
    pipeline.apply(spec)
    assert pipeline.state(spec).steps[STAGE].status == "done"
    as_before(pipeline, spec)

    assert {c.action for c in pipeline.plan(spec)} <= {"no-op", "read", "skip"}
    assert pipeline.writes(lambda: pipeline.apply(spec)) == 0
    assert STAGE not in pipeline.state(spec).steps  # not needed: never run


def test_a_run_from_before_the_stage_step_resumes(pipeline: Harness) -> None:
    spec = pipeline.spec("quickstart.yaml")
    pipeline.apply(spec, target="customize.0")  # stopped before the file step
    as_before(pipeline, spec)

    result = pipeline.apply(spec)
    assert result.outcomes[STAGE] == "created"
    assert result.outcomes["customize.1"] != "unchanged"
    version = pipeline.outputs(spec, "capture.version")
    files = [m for m in pipeline.image_content(version["version_id"])["manifest"]]
    assert [m["fetched"] for m in files if m.get("kind") == "file"] == [True]


def test_a_file_step_in_flight_from_before_the_stage_step_is_not_run_again(
    pipeline: Harness,
) -> None:
    spec = pipeline.spec("quickstart.yaml")
    pipeline.apply(spec, target="customize.1")
    as_before(pipeline, spec, **{"customize.1": "in_flight"})

    result = pipeline.apply(spec)
    assert result.outcomes["customize.1"] == "unchanged"  # its run command was found done
    assert result.outcomes["capture.version"] == "created"


def test_the_file_step_fetches_the_blob_the_stage_step_staged(pipeline: Harness) -> None:
    spec = pipeline.spec("quickstart.yaml", lambda data: data.update(cleanup="never"))
    pipeline.apply(spec)
    [staged] = pipeline.outputs(spec, STAGE)["resources"]
    [fetched] = pipeline.outputs(spec, "customize.1")["resources"]
    assert staged["id"] == fetched["id"] and staged["created_by_run"]
    assert pipeline.outputs(spec, STAGE)["blob"] in staged["id"]


def test_an_apply_looks_the_staging_account_up_once(pipeline: Harness) -> None:
    """The stage step's check, its apply and the check after it share one look-up of the
    staging account (the Batch account's auto-storage): beside the preflight's, one read
    of each account."""
    spec = pipeline.spec("quickstart.yaml")
    pipeline.admin.reset_counters()
    pipeline.apply(spec, target=STAGE)
    operations = pipeline.admin.counters()["operations"]
    assert operations["StorageAccounts_GetProperties"] == 2
    assert operations["BatchAccount_Get"] == 2
