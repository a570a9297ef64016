"""Failures: a failing customize script (message, VM kept or deleted per cleanup policy,
re-apply continues from the fixed step), a failed or interrupted capture (retried for a
passing error code, reported for a permanent one, never a second version), cleanup
leftovers retried by the next apply (their Azure code and request id recorded), and never
deleting what the run did not create."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.core.errors import StepFailedError
from batchimage.core.ownership import Marks
from batchimage.spec import load_spec
from batchimage.steps.names import BuildNames
from tests.pipeline.harness import NO_MANAGED_RUN_COMMANDS, Harness

BROKEN = "apt-get install -y broken-package"
STEP0 = 'echo "built by batchimage" > /etc/batchimage-release'


def fail_scripts(pipeline: Harness, pattern: str = BROKEN) -> None:
    """Make any script matching `pattern` fail in the sandbox's guest, like apt would."""
    rule = {
        "pattern": pattern,
        "exit_code": 100,
        "stdout": "Reading package lists...\nBuilding dependency tree...",
        "stderr": "E: Unable to locate package broken-package",
    }
    pipeline.admin.configure(compute={"script_failures": [rule]})


def with_broken_step(policy: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["cleanup"] = policy
        data["image"]["customize"].insert(1, {"name": "broken", "shell": f"set -e\n{BROKEN}\n"})

    return edit


def vm_names(clients: AzureClients) -> set[str]:
    return {vm.name for vm in clients.compute.virtual_machines.list("sandbox-rg")}


def shell_runs(pipeline: Harness, vm_disk_id: str, needle: str) -> int:
    content = pipeline.image_content(vm_disk_id)
    return sum(1 for m in content["manifest"] if needle in m.get("script", ""))


def test_failing_script_keeps_the_vm_and_reapply_continues(
    pipeline: Harness, clients: AzureClients
) -> None:
    fail_scripts(pipeline)
    spec_path = pipeline.spec("quickstart.yaml", with_broken_step("on_success"))
    with pytest.raises(StepFailedError) as caught:
        pipeline.apply(spec_path)
    message = str(caught.value)
    assert caught.value.step == "customize.1"
    assert "customize step 1 'broken' failed" in message
    assert "exit code 100" in message
    assert "E: Unable to locate package broken-package" in message
    assert "Building dependency tree..." in message
    assert "the build VM is kept for debugging (cleanup: on_success)" in message
    spec = load_spec(spec_path)
    vm = BuildNames.of(spec).vm
    assert vm in vm_names(clients)
    first = pipeline.outputs(spec_path, "build.vm")
    assert shell_runs(pipeline, first["os_disk_id"], STEP0) == 1

    # Fix the script: the same VM goes on from the fixed step; step 0 is not run again.
    spec_path.write_text(spec_path.read_text().replace(BROKEN, "echo fixed"))
    pipeline.apply(spec_path)
    again = pipeline.outputs(spec_path, "build.vm")
    assert again["vm_guid"] == first["vm_guid"], "a new build VM was made"
    version = pipeline.outputs(spec_path, "capture.version")
    content = pipeline.image_content(version["version_id"])
    scripts = [m.get("script", "") for m in content["manifest"]]
    assert sum(STEP0 in s for s in scripts) == 1
    assert any("echo fixed" in s for s in scripts)
    assert vm not in vm_names(clients)  # cleaned up after success


def test_failing_script_with_cleanup_always_deletes_the_build(
    pipeline: Harness, clients: AzureClients
) -> None:
    fail_scripts(pipeline)
    spec_path = pipeline.spec("quickstart.yaml", with_broken_step("always"))
    with pytest.raises(StepFailedError) as caught:
        pipeline.apply(spec_path)
    assert "cleanup: always, so the build resources were deleted" in str(caught.value)
    spec = load_spec(spec_path)
    assert pipeline.build_resources("sandbox-rg", spec.name) == []
    assert BuildNames.of(spec).vm not in vm_names(clients)


def test_capture_failing_with_a_passing_error_is_retried(pipeline: Harness) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    pipeline.admin.set_faults(
        [
            {
                "kind": "lro_fail",
                "method": "PUT",
                "path": "/images/quickstart-ubuntu/versions/",
                "code": "InternalExecutionError",
                "message": "An internal execution error occurred. Please retry later.",
                "times": 1,
            }
        ]
    )
    pipeline.apply(spec_path)
    assert pipeline.admin.faults()["rules"][0]["fired"] == 1
    record = pipeline.state(spec_path).steps["capture.version"]
    assert record.attempts == 2
    retries = [e for e in pipeline.events.events if e.kind == "step_retrying"]
    assert retries and retries[0].step == "capture.version"
    assert retries[0].data["code"] == "InternalExecutionError"
    version = pipeline.outputs(spec_path, "capture.version")
    assert version["version"] == "1.0.0"  # the failed one was replaced, not skipped over


def test_capture_failing_for_good_is_reported(pipeline: Harness, clients: AzureClients) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    pipeline.admin.set_faults(
        [
            {
                "kind": "lro_fail",
                "method": "PUT",
                "path": "/images/quickstart-ubuntu/versions/",
                "code": "OperationNotAllowed",
                "message": "The source virtual machine is not generalized.",
            }
        ]
    )
    seq = pipeline.admin.counters()["seq"]
    with pytest.raises(StepFailedError) as caught:
        pipeline.apply(spec_path)
    assert caught.value.step == "capture.version"
    message = str(caught.value)
    assert "OperationNotAllowed" in message and "not generalized" in message
    assert pipeline.admin.faults()["rules"][0]["fired"] == 1  # not retried
    # The operation's own status and the id of the request that started it - not the
    # last poll's "HTTP 200" and request id.
    put = [
        r
        for r in pipeline.admin.requests(since=seq)
        if r["method"] == "PUT" and "/images/quickstart-ubuntu/versions/" in r["path"]
    ]
    assert len(put) == 1
    assert "HTTP 200" not in message
    assert "ended Failed" in message and f"request id {put[0]['request_id']}" in message
    error = pipeline.state(spec_path).steps["capture.version"].last_error
    assert error is not None and error.status is None
    assert error.request_id == put[0]["request_id"]
    spec = load_spec(spec_path)
    assert BuildNames.of(spec).vm in vm_names(clients)  # kept to debug (on_success)

    # Once the cause is gone, apply continues from the generalized VM: it is not "updated"
    # (Azure refuses any update of a generalized VM) since generalize's tags keep its own.
    pipeline.admin.set_faults([])
    result = pipeline.apply(spec_path)
    assert result.outcomes["build.vm"] == "unchanged"
    assert result.outcomes["generalize"] == "unchanged"
    assert pipeline.outputs(spec_path, "capture.version")["version"] == "1.0.0"


def test_lost_answer_to_the_version_put_never_makes_a_second_version(
    pipeline: Harness, clients: AzureClients
) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    pipeline.admin.set_faults([{"kind": "drop", "method": "PUT", "path": "/versions/", "times": 1}])
    pipeline.apply(spec_path)
    spec = load_spec(spec_path)
    versions = clients.compute.gallery_image_versions.list_by_gallery_image(
        "sandbox-rg", spec.image.capture.gallery.gallery, "quickstart-ubuntu"
    )
    assert [v.name for v in versions] == ["1.0.0"]


def test_new_content_makes_the_next_version(pipeline: Harness) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    pipeline.apply(spec_path)
    spec_path.write_text(spec_path.read_text().replace("built by batchimage", "built again"))
    changes = {c.key: c.action for c in pipeline.plan(spec_path)}
    assert changes["capture.version"] in ("update", "create", "replace")
    pipeline.apply(spec_path)
    assert pipeline.outputs(spec_path, "capture.version")["version"] == "1.0.1"


def test_cleanup_leftovers_are_retried(pipeline: Harness, clients: AzureClients) -> None:
    spec_path = pipeline.spec("quickstart.yaml")
    pipeline.admin.set_faults(
        [
            {
                "kind": "status",
                "method": "DELETE",
                "path": "/networkSecurityGroups/",
                "status": 409,
                "code": "InUseNetworkSecurityGroupCannotBeDeleted",
                "message": "Network security group is in use.",
            }
        ]
    )
    with pytest.raises(StepFailedError) as caught:
        pipeline.apply(spec_path)
    assert caught.value.step == "cleanup"
    spec = load_spec(spec_path)
    nsg = BuildNames.of(spec).nsg
    assert f"could not delete: Microsoft.Network/networkSecurityGroups {nsg}" in str(caught.value)
    assert "retried by the next apply" in str(caught.value)
    assert pipeline.build_resources("sandbox-rg", spec.name) == [nsg]  # the rest is gone
    # permanent: not retried, and the failure says what a support ticket needs
    assert not [e for e in pipeline.events.events if e.kind == "step_retrying"]
    [failed] = [e for e in pipeline.events.events if e.kind == "step_failed"]
    assert failed.data["code"] == "InUseNetworkSecurityGroupCannotBeDeleted"
    assert failed.data["request_id"]
    error = pipeline.state(spec_path).steps["cleanup"].last_error
    assert error is not None and error.code == "InUseNetworkSecurityGroupCannotBeDeleted"
    assert error.request_id == failed.data["request_id"] and error.status == 409
    pipeline.admin.clear_faults()
    pipeline.apply(spec_path)
    assert pipeline.build_resources("sandbox-rg", spec.name) == []
    assert pipeline.writes(lambda: pipeline.apply(spec_path)) == 0


def test_what_the_run_did_not_create_is_never_deleted(
    pipeline: Harness, clients: AzureClients, tmp_path: Path
) -> None:
    net = clients.network
    vnet = net.virtual_networks.begin_create_or_update(
        "sandbox-rg",
        f"{tmp_path.name[:20]}-own-vnet",
        {
            "location": "eastus",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.42.0.0/24"]},
                "subnets": [{"name": "mine", "properties": {"addressPrefix": "10.42.0.0/24"}}],
            },
        },
    ).result()
    subnet_id = vnet.subnets[0].id

    def edit(data: dict[str, Any]) -> None:
        data["image"]["build"]["network"] = {"subnet_id": subnet_id}

    spec_path = pipeline.spec("quickstart.yaml", edit)
    pipeline.apply(spec_path)
    assert net.subnets.get("sandbox-rg", vnet.name, "mine").id == subnet_id
    assert clients.resource.resource_groups.get("sandbox-rg").name == "sandbox-rg"
    network = pipeline.state(spec_path).steps["build.network"]
    assert network.created == []  # used, not ours
    pipeline.destroy(spec_path)
    assert net.subnets.get("sandbox-rg", vnet.name, "mine").id == subnet_id
    assert clients.resource.resource_groups.get("sandbox-rg").name == "sandbox-rg"


def test_clouds_without_managed_run_commands_use_the_action(
    pipeline: Harness, clients: AzureClients
) -> None:
    """Managed run commands unavailable: scripts go through the runCommand action, and the
    VM carries a mark per step so a resumed apply does not run them again."""
    pipeline.admin.set_faults([NO_MANAGED_RUN_COMMANDS])

    def edit(data: dict[str, Any]) -> None:
        data["cleanup"] = "never"

    spec_path = pipeline.spec("quickstart.yaml", edit)
    pipeline.apply(spec_path)
    actions = [r for r in pipeline.admin.requests() if r["path"].endswith("/runCommand")]
    assert len(actions) == 3  # two customize steps and the deprovision
    version = pipeline.outputs(spec_path, "capture.version")
    content = pipeline.image_content(version["version_id"])
    assert any(STEP0 in m.get("script", "") for m in content["manifest"])
    assert content["deprovisioned"] is True
    spec = load_spec(spec_path)
    vm = clients.compute.virtual_machines.get("sandbox-rg", BuildNames.of(spec).vm)
    assert {Marks.Tag.step_ran("customize.0"), Marks.Tag.step_ran("customize.1")} <= set(vm.tags)
    pipeline.admin.clear_faults()
    assert pipeline.writes(lambda: pipeline.apply(spec_path)) == 0
