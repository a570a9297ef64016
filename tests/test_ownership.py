"""The names batchimage writes on Azure resources are `Marks` (batchimage/core/ownership.py)
only: their values never change (deployments carry them), and no other module of the tool
spells a `batchimage-` / `batchimage_` string but the few that name other things."""

from __future__ import annotations

import ast
from pathlib import Path

from batchimage.core.ownership import Marks

PACKAGE = Path(__file__).resolve().parents[1] / "batchimage"
# what existing deployments carry: a change here loses track of what batchimage made before
PINNED = {
    "Tag.PIPELINE": "batchimage-pipeline",
    "Tag.RUN": "batchimage-run",
    "Tag.STEP": "batchimage-step",
    "Tag.FINGERPRINT": "batchimage-fingerprint",
    "Tag.IMAGE": "batchimage-image",
    "Tag.BASE": "batchimage-base",
    "Tag.ROLE": "batchimage-role",
    "Tag.STAGED": "batchimage-staged",
    "Tag.GENERALIZE": "batchimage-generalize",
    "Tag.ACTIVE_RUN": "batchimage-active-run",
    "Tag.BASE_DIGEST": "batchimage-base-digest",
    "Tag.CUSTOMIZE": "batchimage-customize",
    "Tag.CUSTOMIZE_STEPS": "batchimage-customize-steps",
    "Tag.SPEC": "batchimage-spec",
    "Tag.TOOL": "batchimage-tool",
    "Tag.COMMIT": "batchimage-commit",
    "Pool.PIPELINE": "batchimage-pipeline",
    "Pool.POOL": "batchimage-pool",
    "Pool.IMAGE_VERSION": "batchimage-image-version",
    "Pool.RUN": "batchimage-run",
    "Pool.SMOKE_TEST": "batchimage-smoke-test",
    "Blob.PIPELINE": "batchimage_pipeline",
    "Blob.RUN": "batchimage_run",
    "Blob.IMAGE": "batchimage_image",
    "Blob.BASE": "batchimage_base",
    "Blob.FINGERPRINT": "batchimage_fingerprint",
    "Blob.VERIFIED": "batchimage_verified",
    "Blob.LOCK_HOLDER": "batchimage_lock_holder",
    "Blob.STAGED_SHA256": "sha256",
    "Blob.UPLOAD_STATUS": "batchimage_status",
    "Blob.SOURCE_SIZE": "batchimage_source_size",
    "Blob.SOURCE_MTIME": "batchimage_source_mtime_ns",
    "Blob.SOURCE_SAMPLE": "batchimage_source_sample",
    "Blob.LAYOUT": "batchimage_layout",
    "Blob.DIGEST": "batchimage_xxh3_sparse",
    "Blob.DATA_BYTES": "batchimage_data_bytes",
}
# `batchimage-` strings that are no tag or metadata name: (module, the string's start)
OTHER_NAMES = {
    ("azure/pool_smoke.py", "batchimage-smoke-"),  # a smoke test's Batch job id
    ("steps/generalize_scripts.py", "batchimage-generalize"),  # the systemd unit in the VM
    ("azure/vhd/digest.py", "batchimage-sparse-xxh3-128-v1 block="),  # the digest's header
    ("state/blob.py", "batchimage-lease-renewer"),  # thread names
    ("pipeline_guard.py", "batchimage-run-marker"),
    ("core/namelock.py", "batchimage-name-lock"),
}


def spelt(source: str) -> list[str]:
    """The str literals (and f-string pieces) of `source` that start like a mark."""
    return [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith(("batchimage-", "batchimage_"))
    ]


def test_the_marks_keep_their_values() -> None:
    groups = {"Tag": Marks.Tag, "Pool": Marks.Pool, "Blob": Marks.Blob}
    found = {
        f"{group}.{name}": value
        for group, cls in groups.items()
        for name, value in vars(cls).items()
        if name.isupper() and isinstance(value, str)
    }
    assert found == PINNED
    assert Marks.Tag.step_ran("customize.0") == "batchimage-customize.0"


def test_no_module_spells_a_mark_of_its_own() -> None:
    seen = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == "core/ownership.py" or module.startswith("sandbox/"):
            continue
        for value in spelt(path.read_text(encoding="utf-8")):
            seen.add((module, value))
    assert seen - OTHER_NAMES == set(), "define tag and metadata names in Marks"
    assert OTHER_NAMES - seen == set(), "the allow-list names a string no longer there"


def test_the_scan_sees_a_mark_spelt_anywhere() -> None:
    source = 'tags = {"batchimage-owner": run}\nkey = f"batchimage_{name}"\n'
    assert set(spelt(source)) == {"batchimage-owner", "batchimage_"}


def test_the_creator_is_read_from_the_pipeline_and_run_marks() -> None:
    tags = {Marks.Tag.PIPELINE: "demo", Marks.Tag.RUN: "r1"}
    assert Marks.Tag.creator(tags, "demo") == "r1"
    assert Marks.Tag.creator(tags, "other") is None
    assert Marks.Tag.creator(None, "demo") is None
    blob = {Marks.Blob.PIPELINE: "demo", Marks.Blob.RUN: "r2"}
    assert Marks.Blob.creator(blob, "demo") == "r2"
    assert Marks.Pool.creator(blob, "demo") is None  # another store's spelling
