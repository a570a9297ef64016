"""`batchimage apply --yes` then `batchimage destroy --yes` as real subprocesses on a
sandbox spec: everything the pipeline created is gone (gallery, definition, version,
pools, build resources), the seeded resources it only used remain, and a second destroy
is a no-op that exits 0. Destroy lists only what still exists.

The same runs check what a CI log shows (stderr is not a terminal): one time-stamped line
per event, no line twice, each step's own verb (cleanup deletes, customize runs), times
only where they tell something, and the summary on stdout."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.spec import load_spec
from tests.engine.sandbox_cli import ci_env, cli
from tests.engine.sandbox_pipeline import admin, clients, cloud, pools  # noqa: F401
from tests.pools.harness import PoolHarness

pytestmark = pytest.mark.long  # 20 s or more: scheduled first


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
    first = progress_lines(applied.stderr)
    assert re.fullmatch(rf"apply {spec.name}: 16 steps \(run \S+\)", first[0]), first[0]
    for line in (
        "preflight: ran preflight checks: 16 passed",
        f"capture.gallery: creating gallery {gallery}",
        "customize.0: ran customize step 0 'install tools'",
        "cleanup: deleting build resources",
    ):
        assert line in first, line
    assert any(re.fullmatch(r"generalize: generalized \S+-vm( in [\d.]+ s)?", x) for x in first)
    assert any(re.fullmatch(r"cleanup: deleted build resources( in [\d.]+ s)?", x) for x in first)
    assert any(re.fullmatch(r"cleanup: deleted \S+-vm", x) for x in first)
    assert not [x for x in first if x.startswith("cleanup: created")]
    assert summary(applied.stdout) == "8 created, 3 changed, 1 deleted, 2 unchanged, 2 read"

    again = cli(spec_path.parent, env, "apply", spec_path.name, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    second = progress_lines(again.stderr)
    assert "cleanup: up to date" in second and "build.vm: skipped (not needed)" in second
    assert not [x for x in second if "waiting" in x or "creat" in x or "delet" in x]
    assert summary(again.stdout) == "0 created, 0 changed, 0 deleted, 9 unchanged, 7 skipped"
    version_id = pools.outputs(spec_path, "capture.version")["version_id"]
    assert pools.resource(version_id) is not None
    assert gallery in {
        g.name for g in clients.compute.galleries.list_by_resource_group("sandbox-rg")
    }
    assert pools.pool_ids(pool_id)

    shown = cli(spec_path.parent, env, "output", spec_path.name)
    assert shown.returncode == 0, shown.stderr
    fields = [x.split(" = ")[0] for x in shown.stdout.splitlines() if " = " in x]
    assert fields == [
        "capture.version.version_id",
        "capture.version.version",
        "capture.version.regions",
        f"pool.{pool_id}.pool_id",
        f"pool.{pool_id}.account",
        f"pool.{pool_id}.image_version",
        f"pool.{pool_id}.node_agent_sku",
        f"pool.{pool_id}.vm_size",
    ]
    assert f"capture.version.version_id = {version_id}" in shown.stdout
    assert re.search(r"^# \d+ more output\(s\) of other steps: batchimage output --all$",
                     shown.stdout, re.M), shown.stdout  # fmt: skip
    every = cli(spec_path.parent, env, "output", spec_path.name, "--all").stdout
    assert "capture.gallery.name = " in every and "resolve_image.version = " in every
    assert not [x for x in every.splitlines() if x.startswith(("build.", "generalize."))]
    assert (
        "# build.network, build.nic, build.vm, customize.0, customize.1.stage, customize.1, "
        "generalize: deleted by cleanup after the last apply"
    ) in every
    as_json = json.loads(
        cli(spec_path.parent, env, "output", spec_path.name, "--format", "json").stdout
    )
    assert as_json["capture.version"]["version_id"] == version_id  # every step, as before
    assert as_json[f"pool.{pool_id}"]["pool_id"] == pool_id and "build.vm" in as_json

    destroyed = cli(spec_path.parent, env, "destroy", spec_path.name, "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "destroy complete" in destroyed.stdout
    # Only what exists is listed: cleanup deleted the build (VM, disk, NIC, network, file).
    listed = [x for x in destroyed.stdout.splitlines() if x.startswith("  - ")]
    kinds = sorted(x.split()[1].rsplit("/", 1)[-1] for x in listed)
    assert kinds == ["galleries", "images", "pools", "versions"], destroyed.stdout
    assert f"destroy {spec.name} will delete 4 resource(s):" in destroyed.stdout
    assert re.search(
        r"^  \(\d+ more the state records are gone already \(deleted by cleanup or outside "
        r"batchimage\)\)$",
        destroyed.stdout,
        re.M,
    ), destroyed.stdout
    gone = progress_lines(destroyed.stderr)
    assert re.fullmatch(rf"destroy {spec.name} \(run \S+\)", gone[0]), gone[0]
    assert f"pool.{pool_id}: deleting {pool_id}" in gone
    assert any(re.fullmatch(rf"pool\.{pool_id}: deleted {pool_id}( in .+)?", x) for x in gone)

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


STAMP = re.compile(r"\d\d:\d\d:\d\d ")


def progress_lines(stderr: str) -> list[str]:
    """The progress lines without their time stamps, after checking the log's shape:
    every line stamped, none repeated, no "0 s so far" or sub-second times."""
    lines = stderr.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), stderr
    text = [line[9:] for line in lines]
    repeated = [line for line, n in Counter(text).items() if n > 1]
    assert not repeated, repeated
    assert not [x for x in text if "so far" in x or re.search(r" (in|after) 0\.\d s", x)]
    return text


def summary(stdout: str) -> str:
    """The counts of the `apply complete in T: ... (run R)` line."""
    found = re.search(r"^apply complete in [^:]+: (.*) \(run \S+\)$", stdout, re.M)
    assert found, stdout
    return found.group(1)
