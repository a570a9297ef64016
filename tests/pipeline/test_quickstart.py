"""The quickstart end to end: `batchimage apply` as a real subprocess builds the image in
the sandbox; the captured version carries the customizations and no extension; the build
resources are gone; a second apply makes zero writes; plan then says no changes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from batchimage.azure.arm import text
from batchimage.azure.clients import AzureClients
from batchimage.spec import load_spec
from batchimage.steps.names import BuildNames
from tests import forkserver
from tests.engine.procs import REPO, child_env
from tests.pipeline.harness import SPECS, Harness

VM_EXTENSION = {
    "name": "AzureMonitorLinuxAgent",
    "publisher": "Microsoft.Azure.Monitor",
    "type": "AzureMonitorLinuxAgent",
    "typeHandlerVersion": "1.0",
    "os_type": "Linux",
}


def cli(sandbox_folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(BATCHIMAGE_SANDBOX_DIR=str(sandbox_folder))
    return forkserver.run(list(args), cwd=REPO, env=env, timeout=300)


def test_quickstart_through_the_cli(
    pipeline: Harness, clients: AzureClients, sandbox_folder: Path
) -> None:
    # Agents install an extension on every new VM: the image must still carry none.
    pipeline.admin.configure(compute={"vm_extensions": [VM_EXTENSION]})
    spec_path = pipeline.spec("quickstart.yaml")
    state = pipeline.tmp / "cli-state.json"
    first = cli(sandbox_folder, "apply", str(spec_path), "--yes", "--state", str(state))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "apply complete" in first.stdout

    spec = load_spec(spec_path)
    raw_state = state.read_text()
    # no secret reaches the state: the throwaway SSH key, staging SAS, account keys
    assert "ssh-ed25519" not in raw_state and "sig=" not in raw_state
    assert "AccountKey" not in raw_state
    doc = json.loads(raw_state)
    version = doc["steps"]["capture.version"]["outputs"]
    assert version["version"] == "1.0.0"
    assert version["regions"] == ["eastus"]
    content = pipeline.image_content(version["version_id"])
    scripts = [m.get("script", "") for m in content["manifest"] if m.get("kind") == "shell"]
    assert any('echo "built by batchimage" > /etc/batchimage-release' in s for s in scripts)
    reference = (SPECS / "files" / "reference-data.txt").read_bytes()
    files = [m for m in content["manifest"] if m.get("kind") == "file"]
    assert files and files[0]["file"] == "/opt/reference/reference-data.txt"
    assert files[0]["sha256"] == hashlib.sha256(reference).hexdigest()
    assert files[0]["fetched"] is True
    assert "sig=" not in json.dumps(content)
    assert content["deprovisioned"] is True
    assert content["extensions"] == []
    assert content["source"]["sku"] == "server"
    definition = clients.compute.gallery_images.get(
        "sandbox-rg", spec.image.capture.gallery.gallery, "quickstart-ubuntu"
    )
    assert text(definition.os_state) == "Generalized"

    names = BuildNames.of(spec)
    assert pipeline.build_resources("sandbox-rg", spec.name) == [], "build resources are left"
    assert names.vm not in {vm.name for vm in clients.compute.virtual_machines.list("sandbox-rg")}
    pinned = doc["steps"]["resolve_image"]["outputs"]["version"]
    assert pinned == "24.04.202503180"

    pipeline.admin.reset_counters()
    second = cli(sandbox_folder, "apply", str(spec_path), "--yes", "--state", str(state))
    assert second.returncode == 0, second.stdout + second.stderr
    counters: dict[str, Any] = pipeline.admin.counters()
    assert counters["writes"] == 0, counters["operations"]

    plan = cli(sandbox_folder, "plan", str(spec_path), "--state", str(state))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes" in plan.stdout


def test_outputs_an_apply_reads_back_equal_what_a_check_finds(
    pipeline: Harness, monkeypatch: Any
) -> None:
    """The steps whose apply hands back its operation's last read (`apply_observes`) are
    not checked after it, and record the outputs a later check finds."""
    from batchimage.commands.plan import has_changes
    from batchimage.steps.base import Step
    from batchimage.steps.create_image_version import CreateImageVersion
    from batchimage.steps.create_network import CreateNetwork
    from batchimage.steps.create_nic import CreateNic
    from batchimage.steps.create_vm import CreateVm
    from batchimage.steps.run_customize import RunCustomize

    calls: list[tuple[str, str]] = []

    def recording(real: Any, method: str) -> Any:
        def record(self: Any, ctx: Any) -> Any:
            calls.append((self.key, method))
            return real(self, ctx)

        return record

    for cls in (CreateNetwork, CreateNic, CreateVm, RunCustomize, CreateImageVersion):
        for method in ("apply", "check"):
            monkeypatch.setattr(cls, method, recording(getattr(cls, method), method))
    spec = pipeline.spec("quickstart.yaml", lambda data: data.update(cleanup="never"))
    pipeline.apply(spec)
    monkeypatch.undo()
    applied = {key for key, method in calls if method == "apply"}
    observing = ["build.network", "build.nic", "build.vm", "customize.0", "customize.1"]
    observing += ["capture.version"]
    assert applied == set(observing)
    for key in applied:  # nothing checked after its apply
        after = calls[calls.index((key, "apply")) + 1 :]
        assert (key, "check") not in after, key
    planner = pipeline.planner(spec)
    assert not has_changes(planner.plan())
    assert [n.step.key for n in planner.nodes if type(n.step).apply_observes] == observing
    records = pipeline.state(spec).steps
    for node in planner.nodes:  # every step's outputs as recorded, for the checks to read
        if node.step.key not in planner.ctx.results and records.get(node.step.key):
            recorded = records[node.step.key].outputs
            planner.ctx.results[node.step.key] = node.step.outputs_type.model_validate(recorded)
    for key in observing:
        step: Step[Any] = next(n.step for n in planner.nodes if n.step.key == key)
        found = step.check(planner.ctx.for_step(step, records[key].fingerprint or ""))
        assert found is not None, key
        assert found.model_dump(mode="json") == pipeline.outputs(spec, key), key
