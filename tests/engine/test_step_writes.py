"""What a step writes carries (steps/step_writes.py): tags to adopt it by, refs to what the
run created, secrets registered for redaction."""

from __future__ import annotations

from pydantic import SecretStr

from batchimage.core.ownership import Marks
from batchimage.core.redact import redact
from batchimage.steps.step_writes import StepWrites
from tests.engine.fakes import Thing

T = Marks.Tag


def writes() -> StepWrites:
    run = StepWrites(pipeline="demo", run_id="run-1")
    return run.for_step(Thing("a"), "fp-a")


def test_what_it_creates_is_tagged_as_this_runs() -> None:
    tags = writes().tags()
    assert tags == {T.RUN: "run-1", T.PIPELINE: "demo", T.STEP: "a", T.FINGERPRINT: "fp-a"}


def test_what_it_updates_keeps_its_tags_and_creator() -> None:
    theirs = {"owner": "ops"}
    tags = writes().tags(theirs)
    assert tags == {"owner": "ops", T.PIPELINE: "demo", T.STEP: "a", T.FINGERPRINT: "fp-a"}
    ours = writes().tags({T.RUN: "run-0", T.FINGERPRINT: "old"})
    assert ours[T.RUN] == "run-0" and ours[T.FINGERPRINT] == "fp-a"
    assert theirs == {"owner": "ops"}  # the given tags are not changed


def test_the_run_itself_writes_with_no_step() -> None:
    tags = StepWrites(pipeline="demo", run_id="r").tags()
    assert tags[T.STEP] == "" and tags[T.FINGERPRINT] == ""


def test_a_created_ref_names_this_run() -> None:
    ref = writes().created("/subscriptions/s/resourceGroups/g", "resource_group")
    assert (ref.id, ref.kind, ref.created_by_run) == (
        "/subscriptions/s/resourceGroups/g",
        "resource_group",
        "run-1",
    )


class Ref:
    """A spec secret reference: resolves to a value."""

    def __init__(self, value: str) -> None:
        self.value = value

    def resolve(self, key_vault: object = None) -> SecretStr:
        return SecretStr(self.value)


def test_a_resolved_secret_is_masked_from_then_on() -> None:
    value = "context-secret-7f3a9"
    assert redact(f"key={value}!") == f"key={value}!"
    assert writes().secret(Ref(value)).get_secret_value() == value
    assert value not in redact(f"key={value}!")
