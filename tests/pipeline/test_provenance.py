"""Provenance: each image version carries what made it as tags (the exact base, the
customize steps' digests, the spec file's SHA-256, the tool's version, the spec's git
commit); `status` and `output` read it from Azure alone, the state file deleted; `plan`
explains a rebuild by what differs from the provenance of the current version; a version
made before provenance was kept gets the generic reasons."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchimage import __version__
from batchimage.azure.arm import tags_of
from batchimage.core.ownership import Marks
from batchimage.spec import load_spec
from batchimage.steps.provenance import Provenance, git_commit
from tests.pipeline.harness import Harness
from tests.pipeline.test_quickstart import cli

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

BASE = "Canonical:ubuntu-24_04-lts:server:24.04.202503180"
T = Marks.Tag


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit_all(folder: Path) -> str:
    """Make `folder` a git work tree with everything committed (state files ignored)."""
    (folder / ".gitignore").write_text("state/\n")
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "spec")
    return git(folder, "rev-parse", "HEAD")


def version_tags(pipeline: Harness, spec: Path) -> dict[str, str]:
    version = pipeline.outputs(spec, "capture.version")
    found = pipeline.resource(version["version_id"])
    assert found is not None
    return dict(found["tags"])


def edit_script(spec: Path) -> None:
    text = spec.read_text().replace("built by batchimage", "built by batchimage, again")
    spec.write_text(text)


def test_the_version_records_what_made_it_and_status_and_output_read_it_with_the_state_lost(
    pipeline: Harness, sandbox_folder: Path
) -> None:
    spec = pipeline.spec("quickstart.yaml")
    commit = commit_all(spec.parent)
    git_commit.cache_clear()
    pipeline.apply(spec)
    tags = version_tags(pipeline, spec)
    loaded = load_spec(spec)
    steps = tags[T.CUSTOMIZE_STEPS].split(",")
    assert tags[T.BASE] == BASE
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", tags[T.CUSTOMIZE])
    assert len(steps) == 2 and all(re.fullmatch(r"[0-9a-f]{8}", s) for s in steps)
    assert tags[T.SPEC] == "sha256:" + hashlib.sha256(spec.read_bytes()).hexdigest()
    assert tags[T.TOOL] == __version__
    assert tags[T.COMMIT] == commit
    assert T.BASE_DIGEST not in tags
    assert Provenance.from_tags(tags) == Provenance.of(loaded, base=BASE)
    version = pipeline.outputs(spec, "capture.version")

    Path(loaded.state.path).unlink()  # the state is lost: Azure alone says what made it
    expected = {
        "base": BASE,
        "base_digest": None,
        "customize": tags[T.CUSTOMIZE],
        "customize_steps": steps,
        "spec": tags[T.SPEC],
        "tool": __version__,
        "commit": commit,
    }
    status = cli(sandbox_folder, "status", str(spec), "--format", "json")
    assert status.returncode == 0, status.stdout + status.stderr
    found = json.loads(status.stdout)["image_provenance"]
    assert found == {
        "version": "1.0.0",
        "version_id": version["version_id"],
        "image": tags[T.IMAGE],
        "current": True,
        "provenance": expected,
    }
    text = cli(sandbox_folder, "status", str(spec)).stdout
    assert "image version 1.0.0, made from (its tags in Azure):" in text
    for field, value in expected.items():
        if value:
            shown = ",".join(value) if isinstance(value, list) else value
            assert re.search(rf"^  {field} +{re.escape(shown)}$", text, re.M), text

    output = cli(sandbox_folder, "output", str(spec), "--format", "json")
    assert output.returncode == 0, output.stdout + output.stderr
    assert json.loads(output.stdout) == {
        "capture.version": {
            "version": "1.0.0",
            "version_id": version["version_id"],
            "provenance": expected,
        }
    }
    one = cli(sandbox_folder, "output", str(spec), "capture.version.provenance.commit")
    assert one.stdout == f"{commit}\n", one.stdout + one.stderr
    offline = cli(sandbox_folder, "output", str(spec), "--offline")
    assert "provenance" not in offline.stdout and "no outputs yet" in offline.stdout


def test_plan_explains_a_rebuild_by_the_recorded_provenance(pipeline: Harness) -> None:
    spec = pipeline.spec("quickstart.yaml")
    pipeline.apply(spec)
    edit_script(spec)
    reasons = {c.key: c.reason for c in pipeline.plan(spec)}
    assert reasons["capture.version"] == (
        "a new image version: customize.0 script changed (since version 1.0.0)"
    )
    pipeline.apply(spec)
    assert pipeline.outputs(spec, "capture.version")["version"] == "1.0.1"

    data = yaml.safe_load(spec.read_text())
    data["image"]["customize"] = data["image"]["customize"][:1]
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    reasons = {c.key: c.reason for c in pipeline.plan(spec)}
    assert reasons["capture.version"] == (
        "a new image version: customize.1 removed (since version 1.0.1)"
    )


def test_a_version_made_before_provenance_gets_the_generic_reasons(
    pipeline: Harness, sandbox_folder: Path
) -> None:
    spec = pipeline.spec("quickstart.yaml")
    pipeline.apply(spec)
    version = pipeline.outputs(spec, "capture.version")
    loaded = load_spec(spec)
    gallery = loaded.image.capture.gallery
    versions = pipeline.clients.compute.gallery_image_versions
    raw = versions.get(loaded.resource_group, gallery.gallery, gallery.definition.name, "1.0.0")
    old = {k: v for k, v in tags_of(raw).items() if k not in Provenance(base=BASE).tags()}
    old |= {T.BASE: BASE}  # as versions made before provenance were tagged
    for name in (T.CUSTOMIZE, T.CUSTOMIZE_STEPS, T.SPEC, T.TOOL, T.COMMIT):
        old.pop(name, None)
    versions.begin_update(
        loaded.resource_group, gallery.gallery, gallery.definition.name, "1.0.0", {"tags": old}
    ).result()

    status = json.loads(cli(sandbox_folder, "status", str(spec), "--format", "json").stdout)
    assert status["image_provenance"]["provenance"] is None
    assert status["image_provenance"]["version_id"] == version["version_id"]
    assert "no provenance recorded" in cli(sandbox_folder, "status", str(spec)).stdout

    edit_script(spec)
    reasons = {c.key: c.reason for c in pipeline.plan(spec)}
    assert reasons["capture.version"] == ("a new image version: the script of customize.0 changed")


def change_bytes(path: Path, offset: int = 8192) -> None:
    """Write other bytes into the disk's data (the footer and size stay)."""
    with open(path, "r+b") as disk:
        disk.seek(offset)
        disk.write(b"a newer base image" * 28)


def test_a_local_vhd_base_whose_content_changed_makes_a_new_version(pipeline: Harness) -> None:
    spec = pipeline.spec("vhd-upload.yaml")
    pipeline.apply(spec)
    first = pipeline.outputs(spec, "upload_vhd")["digest"]
    assert version_tags(pipeline, spec)[T.BASE_DIGEST] == f"xxh3:{first}"
    assert T.BASE not in version_tags(pipeline, spec)

    change_bytes(pipeline.tmp / "files" / "base-linux.vhd")
    reasons = {c.key: c.reason for c in pipeline.plan(spec)}
    assert reasons["capture.version"] == "a new image version: base VHD changed (uploaded anew)"
    result = pipeline.apply(spec)
    second = pipeline.outputs(spec, "upload_vhd")["digest"]
    assert second != first
    done = {c.key: c for c in result.changes}
    assert done["capture.version"].action == "created"
    assert done["capture.version"].reason == (
        f"a new image version: base VHD xxh3:{first[:12]} → xxh3:{second[:12]} "
        "(since version 1.0.0)"
    )
    assert pipeline.outputs(spec, "capture.version")["version"] == "1.0.1"
    assert version_tags(pipeline, spec)[T.BASE_DIGEST] == f"xxh3:{second}"
    assert all(c.action in ("no-op", "skip") for c in pipeline.plan(spec))


def test_a_vhd_blob_base_whose_content_changed_makes_a_new_version(pipeline: Harness) -> None:
    from batchimage.azure.blobs import blob_service, require_account
    from batchimage.azure.vhd.digest import file_digest

    vhd = pipeline.tmp / "files" / "base-linux.vhd"
    account = require_account(pipeline.clients, "sandboxstore", "sandbox-rg")
    container = blob_service(pipeline.clients, account).get_container_client("vhds")
    if not container.exists():
        container.create_container()
    name = f"{pipeline.tmp.name}-base.vhd"
    blob = container.get_blob_client(name)  # a blob batchimage did not upload: no metadata
    data = vhd.read_bytes()
    blob.create_page_blob(len(data))
    blob.upload_page(data, offset=0, length=len(data))

    def from_blob(data: dict[str, Any]) -> None:
        data["image"]["base"] = {"vhd_url": {"url": blob.url}, "os_type": "linux"}

    spec = pipeline.spec("vhd-upload.yaml", from_blob)
    pipeline.apply(spec)
    first = f"xxh3:{file_digest(vhd)}"
    assert pipeline.outputs(spec, "resolve_image")["digest"] == first
    assert version_tags(pipeline, spec)[T.BASE_DIGEST] == first
    seen = len(pipeline.events.events)
    assert all(c.action in ("no-op", "skip") for c in pipeline.plan(spec))
    said = [e.message for e in pipeline.events.events[seen:] if e.step == "resolve_image"]
    assert not any("content digest" in m for m in said)  # same ETag: not read again

    blob.upload_page(b"\x01" * 512, offset=8192, length=512)
    changes = pipeline.plan(spec)
    reasons = {c.key: c.reason for c in changes}
    assert {c.key: c.action for c in changes}["capture.definition"] == "no-op"  # stays as is
    assert reasons["capture.version"].startswith(f"a new image version: base VHD {first[:17]} → ")
    assert reasons["capture.version"].endswith("(since version 1.0.0)")
    assert reasons["resolve_image"].startswith(f"the VHD's content changed ({first[:17]} → ")
    pipeline.apply(spec)
    changed = pipeline.outputs(spec, "resolve_image")["digest"]
    assert changed != first
    assert pipeline.outputs(spec, "capture.version")["version"] == "1.0.1"
    assert version_tags(pipeline, spec)[T.BASE_DIGEST] == changed
    assert all(c.action in ("no-op", "skip") for c in pipeline.plan(spec))
