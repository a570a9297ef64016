"""The image after its first build (issue 17): a newer Marketplace base is published, plan
reports it, `apply --refresh-base` builds and rolls out a new image version, and retention
(`capture.gallery.keep`) deletes exactly this pipeline's old versions no pool uses - a pool
made outside batchimage keeps the version it runs, and a pool naming the image definition
without a version keeps them all; with the state file deleted, `status` reads from Azure
what made the version the pools run (its provenance: the newer base). With
`exclude_from_latest: until_rolled_out` a new version joins the definition's latest only
once every pool runs it.

Through the real engine and SDK clients against the session sandbox; the rules of the
choice itself (`steps/retention.choose`) are checked directly at the end."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as bm

from batchimage.azure.clients import AzureClients
from batchimage.azure.pool_uses import PoolUse
from batchimage.commands.plan import has_changes
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from batchimage.spec import load_spec
from batchimage.steps.retention import Rule, VersionSeen, choose
from tests.pipeline.test_quickstart import cli
from tests.pools.harness import PoolHarness
from tests.pools.test_base_refresh import NEWER, NOTICE, UBUNTU, pool_of
from tests.pools.test_pool_quota import batch_service_account

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

AGENT = "batch.node.ubuntu 24.04"


@pytest.fixture
def publish(admin: SandboxAdmin) -> Iterator[Callable[[], None]]:
    """Publish NEWER of Canonical ubuntu-24_04-lts server when called; withdrawn after."""
    done: list[bool] = []

    def release() -> None:
        admin.publish_image(*UBUNTU, NEWER)
        done.append(True)

    yield release
    still = {(p["sku"], p["version"]) for p in admin.published_images()}
    if done and (UBUNTU[2], NEWER) in still:
        admin.withdraw_image(*UBUNTU, NEWER)


def keep_one(data: dict[str, Any]) -> None:
    data["image"]["capture"]["gallery"]["keep"] = 1


def new_script(data: dict[str, Any]) -> None:
    data["image"]["customize"][0]["shell"] += "echo second >> /etc/batchimage-release\n"


def versions(pools: PoolHarness, spec: Any) -> list[str]:
    d = pools.outputs(spec, "capture.definition")
    listed = pools.clients.compute.gallery_image_versions.list_by_gallery_image(
        d["group"], d["gallery"], d["name"]
    )
    return sorted(str(v.name) for v in listed)


def outside_pool(pools: PoolHarness, pool_id: str, image_id: str, batch: Any = None) -> None:
    """A pool made by someone else (no batchimage metadata) on `image_id`, no nodes (in the
    account of client `batch`, default the spec's)."""
    vmc = bm.VirtualMachineConfiguration(
        image_reference=bm.BatchVmImageReference(virtual_machine_image_id=image_id),
        node_agent_sku_id=AGENT,
    )
    (batch or pools.batch).create_pool(
        bm.BatchPoolCreateOptions(
            id=pool_id, vm_size="Standard_D2s_v5", virtual_machine_configuration=vmc
        )
    )


def delete_pool(pools: PoolHarness, pool_id: str) -> None:
    pools.batch.begin_delete_pool(pool_id, polling_interval=0).result()
    while pool_id in pools.pool_ids(pool_id):
        pass


def load_gallery(spec: Path) -> str:
    return str(load_spec(spec).image.capture.gallery.gallery)


def said(pools: PoolHarness, step: str) -> list[str]:
    return [e.message for e in pools.events.events if e.step == step and e.message]


def test_refresh_then_retention_keeps_what_a_pool_uses(
    pools: PoolHarness, publish: Callable[[], None], sandbox_folder: Path
) -> None:
    spec = pools.spec("quickstart.yaml", keep_one)
    pool = pool_of(spec)
    pools.apply(spec)
    first = pools.outputs(spec, "capture.version")
    in_use = "in use by pool {} of Batch account sandboxbatch".format
    assert pools.outputs(spec, "retention")["kept"] == [f"1.0.0: {in_use(pool)}"]

    # someone else's pool stays on 1.0.0; a script change rolls the spec's pool to 1.0.1
    outside = f"{pool}-theirs"
    outside_pool(pools, outside, first["version_id"])
    pools.edit(spec, new_script)
    pools.apply(spec)
    assert versions(pools, spec) == ["1.0.0", "1.0.1"]  # 1.0.0 is in use: nothing deleted
    kept = pools.outputs(spec, "retention")["kept"]
    assert kept == [f"1.0.1: {in_use(pool + '-v1-0-1')}", f"1.0.0: {in_use(outside)}"]

    # a newer base: plan reports it and changes nothing
    publish()
    planner = pools.planner(spec)
    assert not has_changes(planner.plan())
    from batchimage.commands.session import base_update_of

    update = base_update_of(planner)
    assert update is not None and update.message() == NOTICE
    planned = {c.key: c for c in pools.plan(spec, refresh=True)}
    assert planned["retention"].action == "delete"
    assert planned["retention"].reason.startswith("after the rollout: will delete")

    # the refresh builds 1.0.2, rolls it out, and retention deletes exactly 1.0.1
    pools.events.events.clear()
    result = pools.apply(spec, refresh=True)
    done = {c.key: c for c in result.changes}
    assert pools.outputs(spec, "capture.version")["version"] == "1.0.2"
    assert pools.pool_ids(pool) == sorted([f"{pool}-v1-0-2", outside])
    assert versions(pools, spec) == ["1.0.0", "1.0.2"]
    assert done["retention"].action == "delete"
    assert done["retention"].reason == (
        f"will delete image version(s) 1.0.1; keeps 1.0.2 ({in_use(pool + '-v1-0-2')}); "
        f"1.0.0 ({in_use(outside)})"
    )
    messages = said(pools, "retention")
    assert "deleting image version 1.0.1: no pool uses it" in messages
    assert f"keeping image version 1.0.0: {in_use(outside)}" in messages
    assert not has_changes(pools.plan(spec))
    assert pools.writes(lambda: pools.apply(spec)) == 0

    # a pool on the definition id (latest) keeps every version; without it 1.0.0 goes
    delete_pool(pools, outside)
    on_latest = f"{pool}-latest"
    outside_pool(pools, on_latest, first["definition_id"])
    quiet = {c.key: c for c in pools.plan(spec)}
    assert not has_changes(list(quiet.values()))
    assert quiet["retention"].reason.startswith("up to date; keeps every image version: ")
    assert f"1.0.0 (pool {on_latest} of Batch account sandboxbatch names the image " in (
        quiet["retention"].reason
    )
    assert pools.writes(lambda: pools.apply(spec)) == 0
    kept = pools.outputs(spec, "retention")["kept"]
    assert kept[1].startswith(f"1.0.0: pool {on_latest} of Batch account sandboxbatch names the")
    delete_pool(pools, on_latest)
    changes = {c.key: c for c in pools.plan(spec)}
    assert changes["retention"].action == "delete"
    assert changes["retention"].reason.startswith("will delete image version(s) 1.0.0;")
    shown = cli(sandbox_folder, "plan", str(spec))
    assert shown.returncode == 2, shown.stdout + shown.stderr
    assert "- delete retention will delete image version(s) 1.0.0;" in " ".join(
        shown.stdout.split()
    )
    pools.apply(spec)
    assert versions(pools, spec) == ["1.0.2"]
    assert not has_changes(pools.plan(spec))

    # the state is lost: Azure alone says what made the version the pools run
    Path(load_spec(spec).state.path).unlink()
    status = cli(sandbox_folder, "status", str(spec), "--format", "json")
    assert status.returncode == 0, status.stdout + status.stderr
    found = json.loads(status.stdout)["image_provenance"]
    assert found["version"] == "1.0.2" and found["current"] is True
    assert found["provenance"]["base"] == ":".join((*UBUNTU, NEWER))
    assert found["provenance"]["customize_steps"] is not None


def test_keep_used_by_keeps_what_pools_of_another_account_use(
    pools: PoolHarness,
    clients: AzureClients,
    sandbox: Connection,
    unique: Callable[[str], str],
) -> None:
    """A pool in a Batch account no pool of the spec lives in keeps the version it runs
    when `keep_used_by` names the account; without it, retention would delete it."""
    other = unique("team")
    batch, _ = batch_service_account(clients, sandbox, other)

    def keep_for_other(data: dict[str, Any]) -> None:
        keep_one(data)
        data["image"]["capture"]["gallery"]["keep_used_by"] = [{"name": other}]

    spec = pools.spec("quickstart.yaml", keep_for_other)
    pools.apply(spec)
    first = pools.outputs(spec, "capture.version")
    theirs = f"{pool_of(spec)}-theirs"
    outside_pool(pools, theirs, first["version_id"], batch)
    try:
        pools.edit(spec, new_script)
        pools.apply(spec)
        assert versions(pools, spec) == ["1.0.0", "1.0.1"]
        kept = pools.outputs(spec, "retention")["kept"]
        assert kept[1] == f"1.0.0: in use by pool {theirs} of Batch account {other}"
        assert not has_changes(pools.plan(spec))

        def forget_other(data: dict[str, Any]) -> None:
            del data["image"]["capture"]["gallery"]["keep_used_by"]

        pools.edit(spec, forget_other)  # the other account unseen: 1.0.0 looks unused
        changes = {c.key: c for c in pools.plan(spec)}
        assert changes["retention"].action == "delete"
        assert changes["retention"].reason.startswith("will delete image version(s) 1.0.0;")
    finally:
        batch.begin_delete_pool(theirs, polling_interval=0).result()
        clients.batch_management.batch_account.begin_delete(sandbox.resource_group, other).result()


def test_another_pipelines_versions_in_the_definition_are_left_alone(pools: PoolHarness) -> None:
    """Two specs share the gallery's definition: retention of one deletes only its own."""
    ours = pools.spec("quickstart.yaml", keep_one)
    pools.apply(ours)
    shared = load_gallery(ours)

    def same_definition(data: dict[str, Any]) -> None:
        data["image"]["capture"]["gallery"]["gallery"] = shared

    theirs = pools.spec("quickstart.yaml", same_definition)
    pools.apply(theirs)
    assert pools.outputs(theirs, "capture.version")["version"] == "1.0.1"
    pools.edit(ours, new_script)
    pools.apply(ours)
    assert versions(pools, ours) == ["1.0.1", "1.0.2"]  # ours 1.0.0 went; theirs stays
    assert pools.outputs(ours, "retention")["versions"] == ["1.0.2"]


def test_a_version_joins_latest_once_rolled_out(pools: PoolHarness) -> None:
    def until_rolled_out(data: dict[str, Any]) -> None:
        data["image"]["capture"]["gallery"]["exclude_from_latest"] = "until_rolled_out"
        data["image"]["capture"]["gallery"]["end_of_life_days"] = 90

    spec = pools.spec("quickstart.yaml", until_rolled_out)
    pools.apply(spec, target="capture.version")  # built, not rolled out yet
    built = pools.outputs(spec, "capture.version")
    d = pools.outputs(spec, "capture.definition")
    gallery = pools.clients.compute.gallery_image_versions

    def profile() -> Any:
        return gallery.get(d["group"], d["gallery"], d["name"], built["version"]).publishing_profile

    assert profile().exclude_from_latest is True
    published = profile().published_date
    assert profile().end_of_life_date.date() == published.date() + dt.timedelta(days=90)
    planned = {c.key: c for c in pools.plan(spec)}
    assert planned["capture.release"].action == "create"  # first time: after the pool steps
    assert "after pool." in planned["capture.release"].reason

    result = pools.apply(spec)
    done = {c.key: c for c in result.changes}
    assert done["capture.release"].action == "updated"
    assert profile().exclude_from_latest is False
    assert not has_changes(pools.plan(spec))
    assert pools.writes(lambda: pools.apply(spec)) == 0

    # the next version stays out of latest until the pool runs it
    pools.edit(spec, new_script)
    pools.apply(spec, target="capture.version")
    built = pools.outputs(spec, "capture.version")
    assert built["version"] == "1.0.1" and profile().exclude_from_latest is True
    pools.apply(spec)
    assert profile().exclude_from_latest is False
    assert pools.outputs(spec, "pool." + pool_of(spec))["image_version"] == "1.0.1"

    pools.destroy(spec)  # unchanged: the recorded version and the pool go
    assert pools.pool_ids(pool_of(spec)) == []
    assert pools.resource(built["version_id"]) is None


# -- the choice, rule by rule -----------------------------------------------------------

DEF = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x/images/d"
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def seen(name: str, *, ours: bool = True, age_days: int = 100, state: str = "Succeeded") -> Any:
    return VersionSeen(name, f"{DEF}/versions/{name}", ours, state, NOW - dt.timedelta(age_days))


def test_choose_keeps_the_newest_the_current_the_used_and_the_unsettled() -> None:
    found = [
        seen("1.0.9"),
        seen("1.0.10"),
        seen("1.0.8"),
        seen("1.0.7", ours=False),
        seen("1.0.6", state="Creating"),
        seen("1.0.5"),
        seen("1.0.4"),
    ]
    uses = [PoolUse("acct", "p", f"{DEF.upper()}/versions/1.0.5")]
    verdict = choose(found, uses, DEF, Rule(keep=2, keep_days=None, current="1.0.4", now=NOW))
    assert verdict.delete == ("1.0.8",)
    assert dict(verdict.kept) == {
        "1.0.10": "one of the newest 2",
        "1.0.9": "one of the newest 2",
        "1.0.6": "provisioning state Creating",
        "1.0.5": "in use by pool p of Batch account acct",
        "1.0.4": "the version the pools run now",
    }  # 1.0.7 is not this pipeline's: not even listed


def test_choose_by_age_and_the_definition_id() -> None:
    found = [seen("1.0.3", age_days=1), seen("1.0.2", age_days=40), seen("1.0.1", age_days=400)]
    rule = Rule(keep=None, keep_days=30, current="1.0.3", now=NOW)
    assert choose(found, [], DEF, rule).delete == ("1.0.2", "1.0.1")
    rule = Rule(keep=1, keep_days=100, current="1.0.3", now=NOW)
    verdict = choose(found, [], DEF, rule)
    assert verdict.delete == ("1.0.1",)
    assert dict(verdict.kept)["1.0.2"] == "published less than 100 day(s) ago (keep_days)"
    latest = [PoolUse("acct", "p", DEF + "/", "deleting")]
    verdict = choose(found, latest, DEF, Rule(keep=1, keep_days=None, current="1.0.3", now=NOW))
    assert verdict.delete == ()
    assert dict(verdict.kept)["1.0.1"].startswith(
        "pool p of Batch account acct (being deleted) names the image definition"
    )
