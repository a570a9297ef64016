"""`batchimage apply --yes` then `batchimage destroy --yes` as real subprocesses on a
sandbox spec: everything the pipeline created is gone (gallery, definition, version,
pools, build resources), the seeded resources it only used remain, and a second destroy
is a no-op that exits 0."""

from __future__ import annotations

from pathlib import Path

from batchimage.azure.clients import AzureClients
from batchimage.spec import load_spec
from tests.engine.sandbox_cli import ci_env, cli
from tests.engine.sandbox_pipeline import admin, clients, cloud, pools  # noqa: F401
from tests.pools.harness import PoolHarness


def test_destroy_removes_what_apply_created_and_keeps_the_rest(
    pools: PoolHarness,  # noqa: F811
    clients: AzureClients,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    spec_path = pools.spec("quickstart.yaml")
    spec = load_spec(spec_path)
    env = ci_env(sandbox_folder)
    gallery = spec.image.capture.gallery.gallery
    pool_id = spec.pools[0].id

    applied = cli(spec_path.parent, env, "apply", spec_path.name, "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    version_id = pools.outputs(spec_path, "capture.version")["version_id"]
    assert pools.resource(version_id) is not None
    assert gallery in {
        g.name for g in clients.compute.galleries.list_by_resource_group("sandbox-rg")
    }
    assert pools.pool_ids(pool_id)

    destroyed = cli(spec_path.parent, env, "destroy", spec_path.name, "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "destroy complete" in destroyed.stdout

    assert pools.resource(version_id) is None
    galleries = {g.name for g in clients.compute.galleries.list_by_resource_group("sandbox-rg")}
    assert gallery not in galleries  # created by the pipeline, so deleted with its image
    assert pools.pool_ids(pool_id) == []
    assert pools.build_resources("sandbox-rg", spec.name) == []
    # what existed before (seeded) stays
    assert clients.resource.resource_groups.check_existence("sandbox-rg")
    assert clients.storage.storage_accounts.get_properties("sandbox-rg", "sandboxstore").name
    assert clients.batch_management.batch_account.get("sandbox-rg", "sandboxbatch").name

    pools.admin.reset_counters()
    again = cli(spec_path.parent, env, "destroy", spec_path.name, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to destroy" in again.stdout
    assert pools.admin.counters()["writes"] == 0
