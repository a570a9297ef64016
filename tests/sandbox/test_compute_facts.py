"""The Compute facts contract other sandbox services use: image facts for a version, a
definition (latest version) and a managed image; in-use checks that veto deletes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchimage.sandbox import arm
from batchimage.sandbox.clock import Clock
from batchimage.sandbox.config import SandboxConfig
from batchimage.sandbox.context import Identity, World
from batchimage.sandbox.services.compute.models import content, facts
from batchimage.sandbox.store import Store

SUB = "00000000-0000-4000-8000-000000000001"
GALLERY = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/galleries/g"
DEFINITION = f"{GALLERY}/images/app"


@pytest.fixture
def world(tmp_path: Path) -> World:
    identity = Identity("t", SUB, "c", "secret", "key")
    return World(Store(tmp_path / "state.json"), Clock(0.001), SandboxConfig(), identity)


def _version(
    world: World, name: str, *, exclude: bool = False, regions: Any = None, state: str = "Succeeded"
) -> str:
    cid = content.new(
        world,
        os_type="Linux",
        source={"publisher": "Canonical", "offer": "o", "sku": "s", "version": "1.0.0"},
    )
    found = content.get(world, cid)
    assert found is not None
    found["manifest"].append({"kind": "shell", "script": "echo hi", "sha256": "ab"})
    found["deprovisioned"] = True
    found["extensions"] = ["CustomScript"]
    rid = f"{DEFINITION}/versions/{name}"
    arm.put(
        world,
        {
            "id": rid,
            "name": name,
            "type": "Microsoft.Compute/galleries/images/versions",
            "location": "eastus",
            "properties": {
                "provisioningState": state,
                "publishingProfile": {"excludeFromLatest": exclude},
            },
            "_content": cid,
            "_replication": regions or {"eastus": {"state": "Completed"}},
        },
    )
    return rid


def _definition(world: World) -> None:
    arm.put(
        world,
        {
            "id": DEFINITION,
            "name": "app",
            "type": "Microsoft.Compute/galleries/images",
            "location": "eastus",
            "properties": {"osType": "Linux", "osState": "Generalized"},
        },
    )


def test_version_facts(world: World) -> None:
    _definition(world)
    rid = _version(
        world,
        "1.0.0",
        regions={"eastus": {"state": "Completed"}, "westeurope": {"state": "Replicating"}},
    )
    found = facts.image_facts(world, rid.upper())
    assert found is not None
    assert found.version_id == rid and found.id == rid.upper()
    assert (found.os_type, found.os_state, found.deprovisioned) == ("Linux", "Generalized", True)
    assert found.replicated_regions == ("eastus",)
    assert found.source == {"publisher": "Canonical", "offer": "o", "sku": "s", "version": "1.0.0"}
    assert found.manifest == ({"kind": "shell", "script": "echo hi", "sha256": "ab"},)
    assert found.extensions == ("CustomScript",)
    assert found.subscription_id == SUB
    assert found.provisioning_state == "Succeeded"


def test_definition_resolves_latest_numerically(world: World) -> None:
    _definition(world)
    assert facts.image_facts(world, DEFINITION) is None  # no version yet
    _version(world, "1.0.9")
    newest = _version(world, "1.0.10")
    _version(world, "2.0.0", exclude=True)
    _version(world, "1.1.0", state="Creating")
    found = facts.image_facts(world, DEFINITION)
    assert found is not None and found.version_id == newest and found.id == DEFINITION
    assert facts.image_facts(world, DEFINITION + "/versions/9.9.9") is None
    assert facts.image_facts(world, GALLERY) is None


def test_managed_image_facts(world: World) -> None:
    cid = content.new(world, os_type="Windows")
    rid = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/images/img"
    arm.put(
        world,
        {
            "id": rid,
            "name": "img",
            "type": "Microsoft.Compute/images",
            "location": "westus2",
            "properties": {
                "provisioningState": "Succeeded",
                "storageProfile": {"osDisk": {"osType": "Windows", "osState": "Generalized"}},
            },
            "_content": cid,
        },
    )
    found = facts.image_facts(world, rid)
    assert found is not None
    assert (found.os_type, found.os_state, found.replicated_regions) == (
        "Windows",
        "Generalized",
        ("westus2",),
    )
    assert found.source is None and found.manifest == ()


def test_in_use_checks(world: World) -> None:
    rid = "/subscriptions/x/versions/1.0.0"

    def check(_: World, version_id: str) -> str | None:
        return "used by pool p1" if version_id == rid else None

    facts.register_in_use_check(check)
    facts.register_in_use_check(check)
    try:
        assert facts.in_use_reason(world, rid) == "used by pool p1"
        assert facts.in_use_reason(world, rid + "0") is None
        assert facts._IN_USE_CHECKS.count(check) == 1
    finally:
        facts._IN_USE_CHECKS.remove(check)


def test_in_use_version_is_not_deleted_and_facts_over_a_real_sandbox(tmp_path: Path) -> None:
    """A sandbox in this process (so the check can be registered here), driven by the SDK."""
    from azure.core.exceptions import HttpResponseError

    from batchimage.azure.clients import AzureClients
    from batchimage.azure.cloud import sandbox as sandbox_profile
    from batchimage.sandbox.admin import SandboxAdmin
    from batchimage.sandbox.server import SandboxServer
    from tests.sandbox.compute_helpers import (
        DEPROVISION_LATER,
        create_vm,
        deprovision,
        linux_body,
        make_group,
        make_nic,
    )

    server = SandboxServer(tmp_path / "sb", config=SandboxConfig(time_scale=0.001), azurite=False)
    connection = server.start_in_thread()
    clients = AzureClients(sandbox_profile(connection))
    admin = SandboxAdmin(connection)
    used: set[str] = set()

    def pools(_: World, version_id: str) -> str | None:
        return "Batch pool 'render' uses it" if version_id.lower() in used else None

    facts.register_in_use_check(pools)
    try:
        compute = clients.compute
        group = make_group(clients, "rg")
        create_vm(clients, group, "vm", linux_body(make_nic(clients, group, "nic")))
        body = {"commandId": "RunShellScript", "script": ["echo one"]}
        compute.virtual_machines.begin_run_command(group, "vm", body).result()
        deprovision(clients, admin, group, "vm")
        compute.virtual_machines.begin_deallocate(group, "vm").result()
        compute.virtual_machines.generalize(group, "vm")
        vm_id = compute.virtual_machines.get(group, "vm").id
        compute.galleries.begin_create_or_update(group, "g", {"location": "eastus"}).result()
        definition = compute.gallery_images.begin_create_or_update(
            group,
            "g",
            "app",
            {
                "location": "eastus",
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                },
            },
        ).result()
        version = compute.gallery_image_versions.begin_create_or_update(
            group,
            "g",
            "app",
            "1.0.0",
            {
                "location": "eastus",
                "properties": {"storageProfile": {"source": {"virtualMachineId": vm_id}}},
            },
        ).result()
        with server.store.lock:
            found = facts.image_facts(server.world, definition.id)
        assert found is not None and found.version_id.lower() == version.id.lower()
        assert (found.os_type, found.os_state, found.deprovisioned) == (
            "Linux",
            "Generalized",
            True,
        )
        assert found.replicated_regions == ("eastus",)
        assert found.source is not None and found.source["offer"] == "ubuntu-24_04-lts"
        assert [m["script"] for m in found.manifest] == ["echo one", DEPROVISION_LATER]
        used.add(version.id.lower())
        with pytest.raises(HttpResponseError) as blocked:
            compute.gallery_image_versions.begin_delete(group, "g", "app", "1.0.0").result()
        assert blocked.value.status_code == 409
        assert "Batch pool 'render' uses it" in str(blocked.value.message)
        used.clear()
        compute.gallery_image_versions.begin_delete(group, "g", "app", "1.0.0").result()
        with server.store.lock:
            assert facts.image_facts(server.world, version.id) is None
    finally:
        facts._IN_USE_CHECKS.remove(pools)
        server.stop()
