"""Problems name file, line, column and field, suggest the nearest key, and are all reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchimage.core.errors import SpecError, SpecProblem
from batchimage.spec import load_spec, load_spec_text
from batchimage.spec.problems import field_path

BAD = """\
name: Demo
cloud: AzurePublicClod
location: eastus
resource_group: demo-rg
image:
  base:
    marketplace: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}
  build:
    vm_sise: Standard_D2s_v5
  capture:
    gallery:
      gallery: g
      definition: {name: d, publisher: p, offer: o, sku: s}
pools:
  - id: p1
    batch_account: {name: acct}
    vm_size: Standard_D2s_v5
    dedicated_nodes: many
    wait_for: idel
cleanup: on-success
state: {backend: azureblob}
"""


def test_every_problem_is_located_with_a_suggestion(write_spec: Callable[..., Path]) -> None:
    path = write_spec(BAD)
    with pytest.raises(SpecError) as caught:
        load_spec(path, environ={})
    got = [(p.line, p.column, p.field, p.message) for p in caught.value.problems]
    assert got == [
        (
            1,
            7,
            "name",
            "'Demo' is not valid: use 3-40 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit",
        ),
        (
            2,
            8,
            "cloud",
            "must be one of 'AzurePublicCloud', 'AzureUSGovernment', "
            "'AzureChinaCloud', 'sandbox', not 'AzurePublicClod'; did you mean 'AzurePublicCloud'?",
        ),
        (9, 5, "image.build.vm_sise", "unknown key 'vm_sise'; did you mean 'vm_size'?"),
        (18, 22, "pools[0].dedicated_nodes", "must be a whole number, not 'many'"),
        (
            19,
            15,
            "pools[0].wait_for",
            "must be one of 'none', 'steady', 'idle', not 'idel'; did you mean 'idle'?",
        ),
        (
            20,
            10,
            "cleanup",
            "must be one of 'always', 'on_success', 'never', not 'on-success'; "
            "did you mean 'on_success'?",
        ),
        (21, 18, "state.backend", "backend must be 'local' or 'azure_blob'"),
    ]
    assert str(caught.value.problems[2]) == (
        f"{path}:9:5: image.build.vm_sise: unknown key 'vm_sise'; did you mean 'vm_size'?"
    )


def test_missing_field_points_at_its_parent_map() -> None:
    text = "name: demo\nlocation: eastus\nresource_group: rg\ncloud: sandbox\nimage:\n  base: {}\n"
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, "inline.yaml", environ={})
    found = {(p.field, p.line, p.column, p.message) for p in caught.value.problems}
    assert ("image.capture", 6, 3, "required, but missing") in found


def test_misspelt_top_level_and_case_folded_keys(write_spec: Callable[..., Path]) -> None:
    text = "name: demo\nLocation: eastus\nresourcegroup: rg\ncloud: sandbox\nimage: {}\n"
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(text), environ={})
    messages = {p.field: p.message for p in caught.value.problems}
    assert messages["Location"] == "unknown key 'Location'; did you mean 'location'?"
    assert (
        messages["resourcegroup"] == "unknown key 'resourcegroup'; did you mean 'resource_group'?"
    )
    assert "location" not in messages and "resource_group" not in messages  # no twin errors


def test_suggestions_reach_into_union_members(write_spec: Callable[..., Path]) -> None:
    text = (
        "name: demo\ncloud: {name: c, arm_endpont: 'https://x/'}\nlocation: eastus\n"
        "resource_group: rg\nimage: {}\nstate: {backend: azure_blob, storage_acount: st1}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(text), environ={})
    messages = {p.field: p.message for p in caught.value.problems}
    assert messages["cloud.arm_endpont"].endswith("did you mean 'arm_endpoint'?")
    assert messages["state.storage_acount"].endswith("did you mean 'storage_account'?")


def test_top_level_must_be_a_map() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text("- a\n- b\n", "list.yaml")
    assert str(caught.value.problems[0]).startswith("list.yaml:1:1: a spec is a map of keys")


def test_unreadable_file_is_a_spec_problem(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "absent.yaml")
    assert caught.value.problems == [
        SpecProblem(
            str(tmp_path / "absent.yaml"),
            1,
            1,
            "",
            "cannot read the file: No such file or directory",
        )
    ]


def test_field_path_rendering() -> None:
    assert field_path(("pools", 0, "vm_size")) == "pools[0].vm_size"
    assert field_path(("tags", "cost center")) == 'tags["cost center"]'
    assert field_path(()) == ""


def test_spec_tags_leave_room_for_batchimages_marks() -> None:
    """Azure takes 50 tags on a resource (docs/azure-behaviours.md, "Tags and provenance"):
    the spec's get 50 less the marks batchimage adds; names as Azure allows them."""
    from batchimage.core.ownership import Marks

    allowed = 50 - Marks.Tag.RESERVED
    good = BAD.replace("name: Demo", "name: demo").replace("AzurePublicClod", "sandbox")
    good = good.replace("vm_sise", "vm_size").replace("many", "1").replace("idel", "idle")
    good = good.replace("on-success", "on_success").replace("azureblob", "local")
    for count, ok in ((allowed, True), (allowed + 1, False)):
        tags = "".join(f"\n  t{i}: v" for i in range(count))
        text = good.replace("resource_group: demo-rg", f"resource_group: demo-rg\ntags:{tags}")
        if ok:
            assert len(load_spec_text(text).tags) == allowed
            continue
        with pytest.raises(SpecError) as refused:
            load_spec_text(text)
        assert f"at most {allowed}" in str(refused.value)
    with pytest.raises(SpecError) as control:
        load_spec_text(
            good.replace("resource_group: demo-rg", 'resource_group: demo-rg\ntags: {"a\\tb": v}')
        )
    assert "control character" in str(control.value)


def test_the_build_vm_keeps_within_azures_tags_with_restart_steps() -> None:
    """The build VM carries the spec's tags, batchimage's BUILD_VM_MARKS and one mark per
    restart step: a spec whose total passes Azure's 50 is refused, naming the counts."""
    from batchimage.core.ownership import Marks

    specs = Path(__file__).resolve().parents[2] / "specs"
    base = (specs / "quickstart.yaml").read_text()
    tags = 50 - Marks.Tag.RESERVED
    room = Marks.Tag.LIMIT - Marks.Tag.BUILD_VM_MARKS - tags
    listed = "".join(f"\n  t{i}: v" for i in range(tags))

    def spec(restarts: int) -> str:
        steps = "".join(f"\n    - name: r{i}\n      restart: true" for i in range(restarts))
        text = base.replace("tags:\n  project: batchimage-quickstart", f"tags:{listed}")
        return text.replace("  customize:", f"  customize:{steps}", 1)

    assert len(load_spec_text(spec(room), base_dir=specs).tags) == tags
    with pytest.raises(SpecError) as refused:
        load_spec_text(spec(room + 1), base_dir=specs)
    said = " ".join(str(refused.value).split())
    assert f"{tags} tags and {room + 1} restart steps" in said
    assert f"Azure allows {Marks.Tag.LIMIT}: drop 1 tag(s) or restart step(s)" in said
