"""Every example image spec applies end to end in the sandbox (engine in-process, real SDK
clients), the captured image is what the spec says, and a second apply makes zero writes."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import yaml

from batchimage.azure.arm import text
from batchimage.azure.clients import AzureClients
from batchimage.spec import load_spec
from tests.pipeline.harness import Harness


def apply_twice(pipeline: Harness, spec: Any) -> None:
    """Apply, then apply again: the second run must not write anything."""
    pipeline.apply(spec)
    writes = pipeline.writes(lambda: pipeline.apply(spec))
    assert writes == 0, pipeline.admin.counters()["operations"]
    assert all(c.action in ("no-op", "skip") for c in pipeline.plan(spec))


def scripts_of(content: dict[str, Any], kind: str) -> list[str]:
    return [m.get("script", "") for m in content["manifest"] if m.get("kind") == kind]


def test_windows_server(pipeline: Harness, clients: AzureClients) -> None:
    spec_path = pipeline.spec("windows-server.yaml")
    apply_twice(pipeline, spec_path)
    version = pipeline.outputs(spec_path, "capture.version")
    assert version["version"] == "1.0.0"  # the spec's explicit version
    content = pipeline.image_content(version["version_id"])
    assert content["os_type"] == "Windows"
    powershell = scripts_of(content, "powershell")
    assert any("LongPathsEnabled" in s for s in powershell)
    tools = (pipeline.tmp / "files" / "install-tools.ps1").read_text()
    assert any(tools.strip() in s for s in powershell)
    assert any("/generalize /oobe /shutdown" in s for s in powershell)
    assert content["deprovisioned"] is True
    raw = clients.compute.gallery_image_versions.get(
        "sandbox-rg",
        load_spec(spec_path).image.capture.gallery.gallery,
        "windows-server-2022",
        "1.0.0",
    )
    regions = raw.publishing_profile.target_regions
    assert [(r.name.replace(" ", "").lower(), r.regional_replica_count) for r in regions] == [
        ("eastus", 2)
    ]
    # The restart step ran (recorded); the generated admin password (Bi-<random>-7a) is
    # in no state, no event and nothing the sandbox stored.
    state = pipeline.state(spec_path)
    assert state.steps["customize.2"].outputs is not None
    generated = re.compile(r"Bi-[A-Za-z0-9_-]{20,}-7a")
    assert not generated.search(json.dumps(state.model_dump(mode="json")))
    assert not generated.search(" ".join(f"{e.message} {e.data}" for e in pipeline.events.events))
    assert not generated.search(json.dumps(pipeline.admin.state()))


def test_two_pools_carries_the_purchase_plan(pipeline: Harness, clients: AzureClients) -> None:
    spec_path = pipeline.spec("two-pools.yaml")
    apply_twice(pipeline, spec_path)
    spec = load_spec(spec_path)
    definition = clients.compute.gallery_images.get(
        "sandbox-rg", spec.image.capture.gallery.gallery, "alma-worker"
    )
    plan = definition.purchase_plan
    assert (plan.publisher, plan.product, plan.name) == ("almalinux", "almalinux-x86_64", "9-gen2")
    assert text(definition.hyper_v_generation) == "V2"
    version = pipeline.outputs(spec_path, "capture.version")
    content = pipeline.image_content(version["version_id"])
    worker = (pipeline.tmp / "files" / "install-worker.sh").read_text()
    entry = next(m for m in content["manifest"] if m.get("script", "").strip() == worker.strip())
    assert {"name": "WORKER_CHANNEL", "value": "stable"} in entry["parameters"]


def test_classic_unmanaged_flow(classic_pipeline: Harness, clients: AzureClients) -> None:
    pipeline = classic_pipeline
    spec_path = pipeline.spec("classic-unmanaged.yaml")
    apply_twice(pipeline, spec_path)
    spec = load_spec(spec_path)
    classic = pipeline.outputs(spec_path, "capture.classic")
    assert f"/system/Microsoft.Compute/Images/{spec.name}/{spec.name}-" in classic["vhd_url"]
    assert classic["vhd_url"].endswith(".vhd")
    version = pipeline.outputs(spec_path, "capture.version")
    raw = clients.compute.gallery_image_versions.get(
        "sandbox-rg", spec.image.capture.gallery.gallery, "classic-ubuntu", version["version"]
    )
    source = raw.storage_profile.os_disk_image.source
    assert source.uri == classic["vhd_url"]
    assert source.storage_account_id.endswith("/storageAccounts/sandboxstore")
    content = pipeline.image_content(version["version_id"])
    assert any("installed by the classic flow" in s for s in scripts_of(content, "shell"))
    assert content["deprovisioned"] is True
    export = pipeline.outputs(spec_path, "capture.vhd_export")
    assert export["vhd_url"].endswith(f"/vhds/classic-ubuntu-{version['version']}.vhd")
    assert export["size"] % 512 == 0 and export["size"] > 512
    # the build VM's unmanaged OS disk VHD was deleted with the build
    vm = pipeline.state(spec_path).steps["build.vm"].outputs
    assert vm is not None and vm["os_vhd_url"]
    assert not pipeline.blob_exists(vm["os_vhd_url"])


def test_vhd_upload_without_a_build_vm(pipeline: Harness) -> None:
    spec_path = pipeline.spec("vhd-upload.yaml")
    apply_twice(pipeline, spec_path)
    upload = pipeline.outputs(spec_path, "upload_vhd")
    vhd = pipeline.tmp / "files" / "base-linux.vhd"
    assert upload["size"] == vhd.stat().st_size
    version = pipeline.outputs(spec_path, "capture.version")
    assert version["regions"] == ["eastus"]
    state = pipeline.state(spec_path)
    assert not any(key.startswith(("build.", "customize.")) for key in state.steps)
    # a copy of the same file (new mtime) is recognised by its digest: nothing re-uploaded,
    # nothing downstream changes, and the next plan is quiet again
    stat = vhd.stat()
    os.utime(vhd, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    seen = len(pipeline.events.events)
    assert pipeline.writes(lambda: pipeline.apply(spec_path)) == 0
    said = [e.message for e in pipeline.events.events[seen:] if e.step == "upload_vhd"]
    assert "base-linux.vhd is already in the blob (same content digest): nothing sent" in said
    assert not any(m.startswith("uploaded") for m in said)
    assert any("another modification time" in m for m in said)
    assert pipeline.outputs(spec_path, "upload_vhd")["digest"] == upload["digest"]
    assert all(c.action in ("no-op", "skip") for c in pipeline.plan(spec_path))


def test_managed_image_and_vhd_export_of_a_managed_disk(
    pipeline: Harness, clients: AzureClients
) -> None:
    def edit(data: dict[str, Any]) -> None:
        capture = data["image"]["capture"]
        capture["vhd_export"] = {"storage_account": "sandboxstore", "container": "exports"}
        capture["managed_image"] = {"name": f"img-{data['name']}"}

    spec_path = pipeline.spec("quickstart.yaml", edit)
    apply_twice(pipeline, spec_path)
    spec = load_spec(spec_path)
    version = pipeline.outputs(spec_path, "capture.version")
    export = pipeline.outputs(spec_path, "capture.vhd_export")
    assert export["vhd_url"].endswith(f"/exports/{spec.name}-{version['version']}.vhd")
    image = clients.compute.images.get("sandbox-rg", f"img-{spec.name}")
    assert text(image.provisioning_state) == "Succeeded"
    content = pipeline.image_content(image.id)
    assert any("built by batchimage" in s for s in scripts_of(content, "shell"))
    # read access to the OS disk was granted, then revoked; the build is gone
    said = [e.message for e in pipeline.events.events if e.step == "capture.vhd_export"]
    assert any("read access to" in m for m in said)
    assert any("to be revoked" in m for m in said)
    assert pipeline.build_resources("sandbox-rg", spec.name) == []


def test_replicas_in_two_regions_with_progress(pipeline: Harness, clients: AzureClients) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["pools"] = []
        data["image"]["capture"]["gallery"]["replicas"] = [
            {"region": "eastus", "count": 1},
            {"region": "westeurope", "count": 2},
        ]

    spec_path = pipeline.spec("quickstart.yaml", edit)
    data = yaml.safe_load(spec_path.read_text())
    data["image"]["capture"]["vhd_export"] = {"storage_account": "sandboxstore"}  # staging
    spec_path.write_text(yaml.safe_dump(data, sort_keys=False))
    pipeline.apply(spec_path)
    version = pipeline.outputs(spec_path, "capture.version")
    assert version["regions"] == ["eastus", "westeurope"]
    spec = load_spec(spec_path)
    raw = clients.compute.gallery_image_versions.get(
        "sandbox-rg", spec.image.capture.gallery.gallery, "quickstart-ubuntu", "1.0.0"
    )
    counts = {
        r.name.replace(" ", "").lower(): r.regional_replica_count
        for r in raw.publishing_profile.target_regions
    }
    assert counts == {"eastus": 1, "westeurope": 2}
    said = [e for e in pipeline.events.events if e.step == "capture.version" and e.data]
    regions = {e.data.get("region") for e in said if "region" in e.data}
    assert regions == {"eastus", "westeurope"}
    assert any(e.data.get("progress") == 100 for e in said if "region" in e.data)


def test_destroy_removes_what_the_pipeline_made(pipeline: Harness, clients: AzureClients) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    pipeline.apply(spec_path)
    spec = load_spec(spec_path)
    gallery = spec.image.capture.gallery.gallery
    assert clients.compute.galleries.get("sandbox-rg", gallery).name == gallery
    pipeline.destroy(spec_path)
    names = {g.name for g in clients.compute.galleries.list_by_resource_group("sandbox-rg")}
    assert gallery not in names
    assert clients.resource.resource_groups.get("sandbox-rg").name == "sandbox-rg"  # not ours


def test_a_lost_state_adopts_the_exported_vhd_without_a_new_build(pipeline: Harness) -> None:
    """The crash sweep's find (seed 29): a state lost after the export (the cleanup had
    deleted the build VM) made the next apply re-export, so re-create the build VM."""

    def edit(data: dict[str, Any]) -> None:
        data["image"]["capture"]["vhd_export"] = {"storage_account": "sandboxstore"}

    spec_path = pipeline.spec("quickstart.yaml", edit)
    pipeline.apply(spec_path)
    state = pipeline.store(spec_path).path
    for path in (state, state.with_name(state.name + ".bak")):
        path.unlink(missing_ok=True)
    plan = {c.key: c.action for c in pipeline.plan(spec_path)}
    assert plan["capture.vhd_export"] == "no-op", plan
    assert plan["build.vm"] != "create", plan
    pipeline.apply(spec_path)
    assert pipeline.outputs(spec_path, "capture.vhd_export")["vhd_url"].endswith("-1.0.0.vhd")
