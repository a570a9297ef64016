"""Refreshing the base image, through the engine and the CLI against the session sandbox:
a Marketplace `latest` stays pinned when its publisher releases a newer version; plan and
status say so (both versions, their dates) and change nothing; `--refresh-base` (one run)
or `follow_latest: true` (every run) builds a new image version from the new base and rolls
it out to the pool; afterwards plan is quiet. A spec with an exact version never reports.

The newer version is published in the shared sandbox for one test and withdrawn after it,
so tests that resolve `latest` elsewhere keep seeing the catalogue's newest."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchimage.azure.marketplace import version_date
from batchimage.commands.plan import has_changes, plan_document, render_plan
from batchimage.commands.session import base_update_of
from batchimage.core.errors import BatchImageError, SpecError
from batchimage.core.ownership import Marks
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.spec import load_spec
from tests.pipeline.harness import SPECS
from tests.pipeline.test_quickstart import cli
from tests.pools.harness import PoolHarness

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

UBUNTU = ("Canonical", "ubuntu-24_04-lts", "server")
PINNED = "24.04.202503180"  # the catalogue's newest
NEWER = "24.04.202511050"
IMAGE = ":".join(UBUNTU)
NOTICE = (
    f"base image {IMAGE}: {NEWER} (2025-11-05) is newer than the pinned {PINNED} "
    "(2025-03-18); `apply --refresh-base` moves to it"
)


@pytest.fixture
def publish(admin: SandboxAdmin) -> Iterator[Callable[..., None]]:
    """Publish NEWER of Canonical ubuntu-24_04-lts `sku` (server) when called; withdrawn
    after the test."""
    published: list[str] = []

    def release(sku: str = "server") -> None:
        admin.publish_image(*UBUNTU[:2], sku, NEWER)
        published.append(sku)

    yield release
    still = {(p["sku"], p["version"]) for p in admin.published_images()}
    for sku in published:
        if (sku, NEWER) in still:
            admin.withdraw_image(*UBUNTU[:2], sku, NEWER)


def pool_of(spec: Path) -> str:
    return str(load_spec(spec).pools[0].id)


def follow(data: dict[str, Any]) -> None:
    data["image"]["base"]["marketplace"]["follow_latest"] = True


def actions(changes: list[Any]) -> dict[str, str]:
    return {c.key: c.action for c in changes}


def test_version_dates_come_from_the_number() -> None:
    assert version_date("24.04.202503180") == dt.date(2025, 3, 18)  # Canonical
    assert version_date("9.5.202411260") == dt.date(2024, 11, 26)  # AlmaLinux
    assert version_date("4.127.20180315") == dt.date(2018, 3, 15)  # WindowsServer 2012 R2
    assert version_date("20348.2966.241205") == dt.date(2024, 12, 5)  # WindowsServer 2022
    assert version_date("3.7.1901151016") is None  # ten digits: not a known form
    assert version_date("1.0.0") is None
    assert version_date("24.04.202513990") is None  # month 13: no date
    assert version_date("0.20250428.2095") is None  # the date is not in the last part


def test_follow_latest_needs_version_latest(tmp_path: Path) -> None:
    data = yaml.safe_load((SPECS / "quickstart.yaml").read_text())
    data["image"]["base"]["marketplace"] |= {"version": PINNED, "follow_latest": True}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "files").symlink_to(SPECS / "files")
    with pytest.raises(SpecError) as refused:
        load_spec(path)
    assert "follow_latest needs version 'latest'" in str(refused.value)


def test_plan_reports_a_newer_base_and_refresh_moves_to_it(
    pools: PoolHarness, publish: Callable[..., None]
) -> None:
    spec = pools.spec("quickstart.yaml")
    old_pool = pool_of(spec)
    pools.apply(spec)
    before = pools.outputs(spec, "capture.version")
    publish()

    # plan: the pin stays, plan says a newer version exists, nothing is to change or written
    planner = pools.planner(spec)
    changes: list[Any] = []
    assert pools.writes(lambda: changes.extend(planner.plan())) == 0
    assert not has_changes(changes)
    assert actions(changes)["resolve_image"] == "no-op"
    update = base_update_of(planner)
    assert update is not None and update.message() == NOTICE
    text = render_plan("p", "s", changes, notes=[update.message()])
    assert f"  note: {NOTICE}" in text and "No changes" in text
    document = plan_document("p", "s", changes) | {"base_image_update": update.to_json()}
    assert json.loads(json.dumps(document))["base_image_update"] == {
        "image": IMAGE,
        "pinned": {"version": PINNED, "date": "2025-03-18"},
        "newest": {"version": NEWER, "date": "2025-11-05"},
        "moving": False,
        "how": None,
        "message": NOTICE,
    }
    assert pools.outputs(spec, "resolve_image")["version"] == PINNED

    # plan --refresh-base: the move and what it rebuilds
    refresh = pools.plan(spec, refresh=True)
    reasons = {c.key: c.reason for c in refresh}
    assert reasons["resolve_image"] == (
        f"moves from {PINNED} (2025-03-18) to {NEWER} (2025-11-05) (--refresh-base)"
    )
    assert actions(refresh)["build.vm"] == "create" and has_changes(refresh)
    assert reasons["capture.version"] == f"a new image version from base {NEWER} (2025-11-05)"
    assert reasons[f"pool.{old_pool}"].startswith("blue/green rollout onto the new image version")

    # apply --refresh-base: a new image version from the new base, rolled out blue/green
    result = pools.apply(spec, refresh=True)
    done = {c.key: c for c in result.changes}
    assert done["capture.version"].action == "created"
    assert done["capture.version"].reason == (  # from the provenance version 1.0.0 records
        f"a new image version: base {PINNED} → {NEWER} (since version {before['version']})"
    )
    assert pools.outputs(spec, "resolve_image")["version"] == NEWER
    after = pools.outputs(spec, "capture.version")
    assert (before["version"], after["version"]) == ("1.0.0", "1.0.1")
    assert pools.image_content(after["version_id"])["source"]["version"] == NEWER
    assert pools.image_content(before["version_id"])["source"]["version"] == PINNED
    tags = pools.resource(after["version_id"])["tags"]  # type: ignore[index]
    assert tags[Marks.Tag.BASE] == f"{IMAGE}:{NEWER}"
    new_pool = f"{old_pool}-v1-0-1"
    assert done[f"pool.{old_pool}"].action == "replaced"
    assert pools.pool_ids(old_pool) == [new_pool]
    assert pools.outputs(spec, f"pool.{old_pool}.retire")["active_pool_id"] == new_pool
    assert str(pools.batch.get_pool(new_pool).virtual_machine_configuration.image_reference
               .virtual_machine_image_id).endswith("/versions/1.0.1")  # fmt: skip

    # afterwards: quiet, and a re-apply writes nothing
    later = pools.planner(spec)
    assert not has_changes(later.plan()) and base_update_of(later) is None
    assert pools.writes(lambda: pools.apply(spec)) == 0


def test_follow_latest_moves_without_the_flag(
    pools: PoolHarness, publish: Callable[..., None]
) -> None:
    spec = pools.spec("quickstart.yaml", follow)
    old_pool = pool_of(spec)
    pools.apply(spec)
    assert pools.outputs(spec, "resolve_image")["version"] == PINNED
    assert not has_changes(pools.plan(spec))  # nothing newer yet: nothing to follow
    publish()

    planner = pools.planner(spec)
    changes = planner.plan()
    assert has_changes(changes)
    update = base_update_of(planner)
    assert update is not None and update.moving and update.how == "follow_latest"
    assert {c.key: c.reason for c in changes}["resolve_image"].endswith("(follow_latest)")

    pools.apply(spec)
    assert pools.outputs(spec, "resolve_image")["version"] == NEWER
    version = pools.outputs(spec, "capture.version")
    assert version["version"] == "1.0.1"
    assert pools.image_content(version["version_id"])["source"]["version"] == NEWER
    assert pools.pool_ids(old_pool) == [f"{old_pool}-v1-0-1"]
    assert not has_changes(pools.plan(spec))
    assert pools.writes(lambda: pools.apply(spec)) == 0


def test_an_exact_version_never_reports_or_moves(
    pools: PoolHarness, publish: Callable[..., None]
) -> None:
    older = "24.04.202502210"

    def exact(data: dict[str, Any]) -> None:
        data["image"]["base"]["marketplace"]["version"] = older

    spec = pools.spec("quickstart.yaml", exact)
    pools.apply(spec)
    publish()
    for refresh in (False, True):
        planner = pools.planner(spec, refresh=refresh)
        assert not has_changes(planner.plan())
        assert base_update_of(planner) is None
    assert pools.outputs(spec, "resolve_image")["version"] == older


def test_a_kept_build_vm_and_managed_image_are_made_again_from_the_new_base(
    pools: PoolHarness, publish: Callable[..., None]
) -> None:
    """With cleanup: never the build VM of the old base is still there: a VM's image cannot
    change, so the move makes it again (same name); the managed image is replaced."""

    def keep(data: dict[str, Any]) -> None:
        data["cleanup"] = "never"
        data["image"]["capture"]["managed_image"] = {"name": f"{data['name']}-mi"}

    spec = pools.spec("quickstart.yaml", keep)
    pools.apply(spec)
    vm_before = pools.outputs(spec, "build.vm")
    image_before = pools.outputs(spec, "capture.managed_image")["image_id"]
    publish()
    assert not has_changes(pools.plan(spec))

    result = pools.apply(spec, refresh=True)
    done = {c.key: c for c in result.changes}
    assert done["build.vm"].action == "created"
    vm_after = pools.outputs(spec, "build.vm")
    assert vm_after["name"] == vm_before["name"] and vm_after["vm_guid"] != vm_before["vm_guid"]
    vm = pools.resource(vm_after["vm_id"])
    assert vm is not None and vm["tags"][Marks.Tag.BASE] == f"{IMAGE}:{NEWER}"
    assert done["capture.managed_image"].action == "created"
    assert "another base" in done["capture.managed_image"].reason
    managed = pools.resource(image_before)
    assert managed is not None and managed["tags"][Marks.Tag.BASE] == f"{IMAGE}:{NEWER}"
    assert pools.outputs(spec, "capture.version")["version"] == "1.0.1"
    assert not has_changes(pools.plan(spec))


def test_plan_and_status_through_the_cli(
    pools: PoolHarness, publish: Callable[..., None], sandbox_folder: Path
) -> None:
    spec = pools.spec("quickstart.yaml")
    state = pools.tmp / "cli-state.json"
    where = ("--state", str(state))
    applied = cli(sandbox_folder, "apply", str(spec), "--yes", *where)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    quiet = cli(sandbox_folder, "status", str(spec), *where)
    assert quiet.returncode == 0, quiet.stderr
    assert f"base image {IMAGE}: pinned {PINNED} (2025-03-18), the newest listed" in quiet.stdout
    publish()

    pools.admin.reset_counters()
    plan = cli(sandbox_folder, "plan", str(spec), *where)
    assert plan.returncode == 0, plan.stdout + plan.stderr  # a newer base is no change
    assert f"note: {NOTICE}" in " ".join(plan.stdout.split())
    as_json = json.loads(cli(sandbox_folder, "plan", str(spec), *where, "--format", "json").stdout)
    assert as_json["base_image_update"]["newest"] == {"version": NEWER, "date": "2025-11-05"}
    assert as_json["has_changes"] is False
    status = cli(sandbox_folder, "status", str(spec), *where)
    assert status.returncode == 0, status.stderr
    assert NOTICE in " ".join(status.stdout.split())
    doc = json.loads(cli(sandbox_folder, "status", str(spec), *where, "--format", "json").stdout)
    assert doc["base_image"]["newer"] is True and doc["base_image"]["checked"] is True
    assert doc["base_image"]["pinned"] == {"version": PINNED, "date": "2025-03-18"}
    offline = cli(sandbox_folder, "status", str(spec), *where, "--offline")
    assert "not checked for a newer version: --offline" in offline.stdout
    assert pools.admin.counters()["writes"] == 0

    refresh = cli(sandbox_folder, "plan", str(spec), *where, "--refresh-base")
    assert refresh.returncode == 2, refresh.stdout + refresh.stderr
    assert f"moves from {PINNED} (2025-03-18) to {NEWER}" in " ".join(refresh.stdout.split())
    assert "moving from the pinned" in refresh.stdout
    refused = cli(sandbox_folder, "plan", str(spec), *where, "--refresh-base", "--offline")
    assert refused.returncode == 2 and "drop --offline" in refused.stderr

    moved = cli(sandbox_folder, "apply", str(spec), "--yes", "--refresh-base", *where)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    after = cli(sandbox_folder, "plan", str(spec), *where)
    assert after.returncode == 0 and "note:" not in after.stdout
    assert f"pinned {NEWER} (2025-11-05), the newest listed" in " ".join(
        cli(sandbox_folder, "status", str(spec), *where).stdout.split()
    )


def test_the_classic_flow_captures_the_new_base_again(
    classic_pools: PoolHarness, publish: Callable[..., None]
) -> None:
    """The classic capture's VHD is marked with its base: the one of the old base is not
    taken for the new image version, which gets a VHD of its own."""
    pools = classic_pools
    spec = pools.spec("classic-unmanaged.yaml")
    pools.apply(spec)
    old_vhd = pools.outputs(spec, "capture.classic")["vhd_url"]
    publish("server-gen1")
    assert not has_changes(pools.plan(spec))

    pools.apply(spec, refresh=True)
    new_vhd = pools.outputs(spec, "capture.classic")["vhd_url"]
    assert new_vhd != old_vhd and pools.blob_exists(old_vhd)  # the old version still uses it
    version = pools.outputs(spec, "capture.version")
    assert version["version"] == "1.0.1"
    assert pools.image_content(version["version_id"])["source"]["version"] == NEWER
    assert not has_changes(pools.plan(spec))


def test_a_pin_no_longer_listed_says_how_to_move_on(
    pools: PoolHarness, publish: Callable[..., None]
) -> None:
    """A publisher may take a version down: the run stops, saying so, and --refresh-base
    moves to the newest listed."""
    publish()
    spec = pools.spec("quickstart.yaml")
    pools.apply(spec)
    assert pools.outputs(spec, "resolve_image")["version"] == NEWER
    pools.admin.withdraw_image(*UBUNTU, NEWER)
    with pytest.raises(BatchImageError) as stopped:
        pools.plan(spec)
    assert f"has no version {NEWER}" in str(stopped.value)
    assert "no longer listed: `apply --refresh-base` moves to the newest" in str(stopped.value)
    pools.apply(spec, refresh=True)
    assert pools.outputs(spec, "resolve_image")["version"] == PINNED
    version = pools.outputs(spec, "capture.version")
    assert pools.image_content(version["version_id"])["source"]["version"] == PINNED
    assert not has_changes(pools.plan(spec))


def test_plan_and_apply_warn_of_a_base_scheduled_for_deprecation(
    pools: PoolHarness, publish: Callable[..., None], sandbox_folder: Path
) -> None:
    """The pinned version's publisher schedules its deprecation: plan and apply say when and
    what instead; once deprecated, the run stops saying how to move on."""
    from batchimage.commands.plan import base_deprecation, base_notes

    publish()
    spec = pools.spec("quickstart.yaml")
    pools.apply(spec)
    assert pools.outputs(spec, "resolve_image")["version"] == NEWER
    alternative = {"type": "Offer", "value": "ubuntu-26_04-lts"}
    pools.admin.deprecate_image(
        *UBUNTU, NEWER, scheduled="2099-03-01T00:00:00+00:00", alternative=alternative
    )
    warning = (
        f"base image {IMAGE}:{NEWER} is scheduled for deprecation on 2099-03-01; its "
        "publisher's alternative: offer ubuntu-26_04-lts; from then on Azure makes no new VM "
        "from it: move to a newer version (`apply --refresh-base` for a pinned `latest`) or "
        "another image"
    )
    planner = pools.planner(spec)
    assert not has_changes(planner.plan())  # a warning, not a change
    assert base_notes(planner) == [warning]
    assert base_deprecation(planner, as_json=True) == {
        "image": f"{IMAGE}:{NEWER}",
        "state": "ScheduledForDeprecation",
        "scheduled": "2099-03-01T00:00:00+00:00",
        "alternative": alternative,
        "message": warning,
    }
    seen = len(pools.events.events)
    pools.apply(spec)
    said = [e.message for e in pools.events.events[seen:] if e.step == "resolve_image"]
    assert warning in said
    state = pools.tmp / "cli-state.json"
    shown = cli(sandbox_folder, "plan", str(spec), "--state", str(state))
    assert f"note: {warning}" in " ".join(shown.stdout.split()), shown.stdout + shown.stderr
    doc = json.loads(
        cli(sandbox_folder, "plan", str(spec), "--state", str(state), "--format", "json").stdout
    )
    assert doc["base_image_deprecation"]["scheduled"] == "2099-03-01T00:00:00+00:00"

    pools.admin.deprecate_image(*UBUNTU, NEWER, state="Deprecated")
    with pytest.raises(BatchImageError) as stopped:
        pools.plan(spec)
    assert f"Marketplace image {IMAGE}:{NEWER} is deprecated" in str(stopped.value)
    newest = (  # the pin is the newest listed: --refresh-base would land on it again
        "it is the newest version listed: pin an older one that is not deprecated "
        "(image.base.marketplace.version), or pick another offer or SKU"
    )
    assert newest in str(stopped.value)
    with pytest.raises(BatchImageError) as first:  # a new spec's `latest`: the same
        pools.plan(pools.spec("quickstart.yaml"))
    assert f"Marketplace image {IMAGE}:{NEWER} is deprecated" in str(first.value)
    assert newest in str(first.value)


def test_a_deprecated_pin_with_a_newer_version_listed_says_refresh(
    pools: PoolHarness, publish: Callable[..., None]
) -> None:
    """The pinned version is deprecated and a newer one is listed: `--refresh-base`."""
    spec = pools.spec("quickstart.yaml")
    pools.apply(spec)
    assert pools.outputs(spec, "resolve_image")["version"] == PINNED
    publish()
    pools.admin.deprecate_image(*UBUNTU, PINNED, state="Deprecated")
    try:
        with pytest.raises(BatchImageError) as stopped:
            pools.plan(spec)
    finally:
        pools.admin.deprecate_image(*UBUNTU, PINNED, state="Active")
    assert f"Marketplace image {IMAGE}:{PINNED} is deprecated" in str(stopped.value)
    assert "pinned by an earlier run: `apply --refresh-base` moves to the newest" in str(
        stopped.value
    )
