"""Rehearsal (`--sandbox`): a spec written for Azure (its own subscription, region, groups,
storage and Batch accounts, existing subnets, a pool) runs unchanged against the sandbox,
which makes its prerequisites first; the real state file is never written."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from batchimage.azure.blobs import account_for_url, blob_service, split_blob_url
from batchimage.azure.clients import AzureClients
from batchimage.rehearsal import prerequisites
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.spec import load_spec_text
from tests.engine.sandbox_cli import ci_env, cli
from tests.sandbox.conftest import admin, clients, cloud  # noqa: F401  (fixtures)

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

SUB = "6f1c3a52-8d4e-4b7a-9c1e-2a5b7d9e0f13"
NET = f"/subscriptions/{SUB}/resourceGroups/contoso-net-rg/providers/Microsoft.Network"

SPEC = """\
name: contoso-worker
cloud: AzurePublicCloud
subscription: {sub}
location: westeurope
resource_group: contoso-imaging-{tag}
image:
  base:
    marketplace: {{publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}}
  build:
    network:
      subnet_id: {net}/virtualNetworks/vnet-{tag}/subnets/build
  customize:
    - shell: echo contoso > /etc/contoso-release
    - file: {{source: files/reference-data.txt, destination: /opt/reference/data.txt}}
  capture:
    gallery:
      gallery: contoso_{tag}
      resource_group: contoso-images-{tag}
      definition: {{name: worker-ubuntu, publisher: contoso, offer: worker, sku: ubuntu-24-04}}
    vhd_export:
      storage_account: contosoimg{tag}
      resource_group: contoso-data-{tag}
pools:
  - id: workers
    batch_account:
      name: contosobatch{tag}
      resource_group: contoso-batch-{tag}
      location: northeurope
    vm_size: Standard_D2s_v5
    dedicated_nodes: 1
    network:
      subnet_id: {net}/virtualNetworks/poolvnet-{tag}/subnets/pools
"""


@pytest.fixture
def azure_spec(tmp_path: Path) -> tuple[Path, str]:
    tag = uuid.uuid4().hex[:8]
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "reference-data.txt").write_text("reference\n")
    path = tmp_path / "contoso.yaml"
    path.write_text(SPEC.format(sub=SUB, net=NET, tag=tag))
    return path, tag


def test_prerequisites_name_what_the_spec_expects_to_exist(tmp_path: Path) -> None:
    text = SPEC.format(sub=SUB, net=NET, tag="t1") + (
        "  - id: more\n"
        "    batch_account: {name: contosobatcht1, resource_group: contoso-batch-t1, "
        "location: northeurope}\n"
        "    vm_size: Standard_D2s_v5\n"
        "    dedicated_nodes: 1\n"
        f"    network: {{subnet_id: {NET}/virtualNetworks/poolvnet-t1/subnets/more}}\n"
        "state: {backend: azure_blob, storage_account: contosostate, container: state}\n"
    )
    text = text.replace(
        "  build:\n", "  build:\n    os_disk: {type: unmanaged, storage_account: contosodisks}\n"
    )
    # public Azure retired unmanaged disks: the classic flow is a custom (Stack Hub) cloud's
    stack = (
        "cloud: {name: contoso-stack, arm_endpoint: https://management.local.azurestack.external/}"
    )
    text = text.replace("cloud: AzurePublicCloud", stack)
    spec = load_spec_text(text, base_dir=tmp_path, check_files=False)
    items = prerequisites(spec, "11111111-2222-4333-8444-555555555555")
    by_name = {item["name"]: item for item in items}
    assert [item["kind"] for item in items] == [
        "storage_account",
        "storage_account",
        "storage_account",
        "batch_account",
        "subnet",
        "subnet",
        "subnet",
    ]
    assert by_name["contosodisks"]["group"] == "contoso-imaging-t1"  # the spec's group
    assert by_name["contosoimgt1"]["group"] == "contoso-data-t1"
    assert by_name["contosostate"]["group"] == "contoso-imaging-t1"
    assert all(by_name[n]["location"] == "westeurope" for n in ("contosodisks", "contosostate"))
    batch = by_name["contosobatcht1"]  # named by two pools, provisioned once
    assert (batch["location"], batch["pool_allocation_mode"]) == ("northeurope", "UserSubscription")
    assert batch["subscription"] == "11111111-2222-4333-8444-555555555555"
    build, pools, more = by_name["build"], by_name["pools"], by_name["more"]
    assert build["subscription"] == SUB and build["group"] == "contoso-net-rg"  # from the id
    assert (build["vnet"], build["location"]) == ("vnet-t1", "westeurope")
    assert (pools["vnet"], pools["location"]) == ("poolvnet-t1", "northeurope")
    assert pools["vnet_prefix"] == more["vnet_prefix"]  # one vnet, two subnets apart
    assert pools["address_prefix"] != more["address_prefix"]


def test_plan_and_apply_rehearse_a_spec_written_for_azure(
    azure_spec: tuple[Path, str],
    sandbox_folder: Path,
    clients: AzureClients,  # noqa: F811
    admin: SandboxAdmin,  # noqa: F811
) -> None:
    path, tag = azure_spec
    folder = path.parent
    env = ci_env(sandbox_folder)

    plan = cli(folder, env, "plan", path.name, "--sandbox")
    assert plan.returncode == 2, plan.stdout + plan.stderr  # changes to make, no error
    assert "create   capture.version" in plan.stdout

    applied = cli(folder, env, "apply", path.name, "--sandbox", "--yes")
    assert applied.returncode == 0, applied.stderr
    state_dir = folder / ".batchimage" / "state"
    assert not (state_dir / "contoso-worker.json").exists()  # the real state: untouched
    rehearsal_state = json.loads((state_dir / "contoso-worker.sandbox.json").read_text())
    assert [run["result"] for run in rehearsal_state["runs"]] == ["ok"]

    there = AzureClients(clients.profile, SUB, credential=clients.credential)
    store = there.storage.storage_accounts.get_properties(f"contoso-data-{tag}", f"contosoimg{tag}")
    assert (store.kind, store.location) == ("StorageV2", "westeurope")
    batch = there.batch_management.batch_account.get(f"contoso-batch-{tag}", f"contosobatch{tag}")
    assert (batch.pool_allocation_mode, batch.location) == ("UserSubscription", "northeurope")
    build_subnet = there.network.subnets.get("contoso-net-rg", f"vnet-{tag}", "build")
    assert build_subnet.ip_configurations in (None, [])  # the build NIC is gone (cleanup)
    pool_vnet = there.network.virtual_networks.get("contoso-net-rg", f"poolvnet-{tag}")
    assert pool_vnet.location == "northeurope"

    versions = list(
        there.compute.gallery_image_versions.list_by_gallery_image(
            f"contoso-images-{tag}", f"contoso_{tag}", "worker-ubuntu"
        )
    )
    assert [v.name for v in versions] == ["1.0.0"]
    regions = {r.name for r in versions[0].publishing_profile.target_regions}
    assert regions == {"westeurope", "northeurope"}
    pool = there.batch(str(batch.account_endpoint)).get_pool("workers")
    assert pool.virtual_machine_configuration is not None
    image = pool.virtual_machine_configuration.image_reference.virtual_machine_image_id
    assert image is not None and image.lower() == str(versions[0].id).lower()
    assert pool.network_configuration is not None
    assert (
        pool.network_configuration.subnet_id
        == f"{NET}/virtualNetworks/poolvnet-{tag}/subnets/pools"
    )
    groups = {g.name for g in there.resource.resource_groups.list()}
    assert f"contoso-imaging-{tag}" not in groups  # created by the run, removed by cleanup

    outputs = json.loads(
        cli(folder, env, "output", path.name, "--sandbox", "--format", "json").stdout
    )
    vhd_url = outputs["capture.vhd_export"]["vhd_url"]
    account = account_for_url(there, vhd_url)
    assert account is not None and account.name == f"contosoimg{tag}"
    container, blob = split_blob_url(account, vhd_url)
    assert blob_service(there, account).get_blob_client(container, blob).exists()

    again = cli(folder, env, "plan", path.name, "--sandbox")
    assert again.returncode == 0, again.stdout + again.stderr
    admin.reset_counters()
    reapplied = cli(folder, env, "apply", path.name, "--sandbox", "--yes")
    assert reapplied.returncode == 0, reapplied.stderr
    assert admin.counters()["writes"] == 0
    assert not (state_dir / "contoso-worker.json").exists()


def test_a_file_step_stages_in_the_auto_storage_the_rehearsal_gives_the_batch_account(
    azure_spec: tuple[Path, str],
    sandbox_folder: Path,
    clients: AzureClients,  # noqa: F811
) -> None:
    """On Azure a file step stages in the pool's Batch account auto-storage when the spec
    names no storage account; the rehearsal's Batch account gets one, so preflight and
    apply pass (before: FAIL file staging)."""
    path, tag = azure_spec
    text = path.read_text()
    start = text.index("    vhd_export:")
    text = text[:start] + text[text.index("pools:") :]
    path.write_text(text)
    env = ci_env(sandbox_folder)
    checked = cli(path.parent, env, "preflight", path.name, "--sandbox")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    spec = load_spec_text(text, base_dir=path.parent)
    items = prerequisites(spec, SUB)
    store = next(i for i in items if i["kind"] == "storage_account")
    batch = next(i for i in items if i["kind"] == "batch_account")
    assert (store["group"], store["location"]) == (f"contoso-batch-{tag}", "northeurope")
    assert batch["auto_storage"].endswith(f"/storageAccounts/{store['name']}")
    assert (
        f"ok   file staging: files are staged in {store['name']} (auto-storage of "
        f"contosobatch{tag})"
    ) in checked.stdout
    applied = cli(path.parent, env, "apply", path.name, "--sandbox", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"customize.1.stage: staging reference-data.txt (10 bytes) in {store['name']}" in (
        applied.stderr
    )
