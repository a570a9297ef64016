"""Unit tests of the pool decisions: the spec's pool against a live pool (real SDK models)
-> adopt, update in place or replace; what is compared (never secrets); the resize
timeout rule; blue/green pool ids."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from azure.batch import models as bm

from batchimage.azure.pool_agent import ImageBase
from batchimage.azure.pool_config import Desired, config_of, create_options
from batchimage.core.ownership import Marks
from batchimage.spec import Pool
from batchimage.steps.pool_common import Observed, PoolImage
from batchimage.steps.pool_rules import describe, diff, resize_timeout_s

IMAGE = (
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/d/"
    "versions/1.0.0"
)
SUBNET = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
AGENT = "batch.node.ubuntu 24.04"
SECRETS = {"KEY_A": "secret-one", "KEY_B": "secret-two"}


def spec_pool(**changes: Any) -> Pool:
    data: dict[str, Any] = {
        "id": "work",
        "batch_account": {"name": "acct", "resource_group": "rg"},
        "vm_size": "Standard_D2s_v5",
        "dedicated_nodes": 2,
        "start_task": {"command_line": "/bin/sh -c 'echo hi'", "environment": {"A": "1"}},
        "metadata": {"team": "research"},
    }
    data.update(changes)
    return Pool.model_validate(data)


def desired_of(
    pool: Pool, image: str = IMAGE, metadata: dict[str, str] | None = None, security: str = ""
) -> Desired:
    """What the pool step adds to the spec pool, with the resize timeout the rules give."""
    return Desired(
        pool.id, image, AGENT, metadata or {}, security, resize_timeout_s=resize_timeout_s(pool)
    )


def options(pool: Pool, image: str = IMAGE, secret: str = "KEY_A") -> bm.BatchPoolCreateOptions:
    desired = desired_of(pool, image, {**pool.metadata, Marks.Pool.PIPELINE: "p"})
    return create_options(pool, desired, lambda ref: SECRETS[secret])


def live_from(opts: bm.BatchPoolCreateOptions, **changes: Any) -> bm.BatchPool:
    """A live pool as Batch returns one created from `opts` (with `changes` applied)."""
    data = opts.as_dict()
    data.update(state="active", allocationState="steady", taskSlotsPerNode=1)
    data["metadata"] = [*data.get("metadata", []), {"name": Marks.Pool.RUN, "value": "run-1"}]
    pool = bm.BatchPool(data)
    for name, value in changes.items():
        setattr(pool, name, value)
    return pool


def changes_between(live_pool: Pool, want_pool: Pool, **live_changes: Any) -> list[Any]:
    live = live_from(options(live_pool), **live_changes)
    return diff(config_of(live), config_of(options(want_pool)))


def test_same_configuration_is_adopted() -> None:
    pool = spec_pool()
    assert changes_between(pool, pool) == []


def test_kept_metadata_and_secrets_are_not_compared() -> None:
    blob = {
        "azure_blob": {
            "account_name": "store",
            "container_name": "data",
            "account_key": {"env": "KEY"},
            "relative_mount_path": "data",
        }
    }
    pool = spec_pool(mounts=[blob])
    live = live_from(options(pool, secret="KEY_A"))
    live.metadata = [*live.metadata, bm.BatchMetadataItem(name=Marks.Pool.SMOKE_TEST, value="abc")]
    want = options(pool, secret="KEY_B")  # another key value: not a difference
    assert diff(config_of(live), config_of(want)) == []
    assert "secret-one" not in repr(config_of(live))


@pytest.mark.parametrize(
    ("want", "name"),
    [
        ({"dedicated_nodes": 5}, "dedicated"),
        ({"spot_nodes": 3}, "spot"),
        ({"start_task": {"command_line": "/bin/sh -c 'echo bye'"}}, "start_task"),
        ({"start_task": {"command_line": "/bin/sh -c 'echo hi'", "elevated": True}}, "start_task"),
        ({"start_task": None}, "start_task"),
        ({"metadata": {"team": "ops"}}, "metadata"),
        (
            {"autoscale": {"formula": "$TargetDedicatedNodes = 1;"}, "dedicated_nodes": None},
            "autoscale",
        ),
    ],
)
def test_updatable_differences_update_in_place(want: dict[str, Any], name: str) -> None:
    found = changes_between(spec_pool(), spec_pool(**want))
    assert [c.name for c in found] == [name]
    assert not any(c.immutable for c in found)  # updated in place


@pytest.mark.parametrize(
    ("want", "name"),
    [
        ({"vm_size": "Standard_D4s_v5"}, "vm_size"),
        ({"task_slots_per_node": 4}, "task_slots"),
        ({"display_name": "Work pool"}, "display_name"),
        (
            {
                "network": {
                    "subnet_id": SUBNET,
                    "public_ip": "none",
                }
            },
            "network",
        ),
        ({"mounts": [{"nfs": {"source": "10.0.0.4:/x", "relative_mount_path": "x"}}]}, "mounts"),
    ],
)
def test_immutable_differences_replace(want: dict[str, Any], name: str) -> None:
    found = changes_between(spec_pool(), spec_pool(**want))
    assert [c.name for c in found] == [name]
    assert any(c.immutable for c in found)  # only a new pool has it


def test_new_image_replaces_and_mixed_changes_replace() -> None:
    pool = spec_pool()
    live = live_from(options(pool))
    other = IMAGE.replace("1.0.0", "1.0.1")
    want = options(spec_pool(dedicated_nodes=4), image=other)
    found = diff(config_of(live), config_of(want))
    assert [c.name for c in found] == ["image_id", "dedicated"]
    assert any(c.immutable for c in found)  # only a new pool has it
    assert "versions/1.0.0 -> " in describe(found) and "target dedicated nodes 2 -> 4" in describe(
        found
    )


def test_someone_resized_the_pool_is_a_difference() -> None:
    found = changes_between(spec_pool(), spec_pool(), target_dedicated_nodes=7)
    assert [str(c) for c in found] == ["target dedicated nodes 7 -> 2"]


def test_autoscale_targets_are_the_formula_s_business() -> None:
    scaled = spec_pool(dedicated_nodes=None, autoscale={"formula": "$TargetDedicatedNodes = 3;"})
    live = live_from(options(scaled), target_dedicated_nodes=3)
    assert diff(config_of(live), config_of(options(scaled))) == []
    slower = spec_pool(
        dedicated_nodes=None,
        autoscale={"formula": "$TargetDedicatedNodes = 3;", "interval_min": 30},
    )
    found = diff(config_of(live), config_of(options(slower)))
    assert [str(c) for c in found] == ["autoscale interval 15 -> 30 min"]
    fixed = diff(config_of(live), config_of(options(spec_pool())))
    assert [str(c) for c in fixed] == [
        "autoscale disabled (fixed size)",
        "target dedicated nodes 3 -> 2",
    ]


def test_resize_timeout_is_at_least_15_minutes_per_1000_nodes() -> None:
    assert resize_timeout_s(spec_pool(dedicated_nodes=10)) == 900
    assert resize_timeout_s(spec_pool(dedicated_nodes=1500, spot_nodes=1000)) == 3 * 900
    assert resize_timeout_s(spec_pool(dedicated_nodes=10, resize_timeout_s=3600)) == 3600
    opts = options(spec_pool(dedicated_nodes=2500))
    assert opts.resize_timeout == timedelta(seconds=3 * 900)


def test_create_options_carry_the_spec() -> None:
    pool = spec_pool(
        spot_nodes=1,
        task_slots_per_node=2,
        start_task={
            "command_line": "run.sh",
            "elevated": True,
            "max_task_retry_count": 2,
            "resource_files": [{"http_url": "https://example.com/run.sh", "file_mode": "0755"}],
        },
        network={
            "subnet_id": SUBNET,
            "public_ip": "none",
        },
    )
    opts = options(pool)
    assert opts.virtual_machine_configuration.image_reference.virtual_machine_image_id == IMAGE
    assert opts.virtual_machine_configuration.node_agent_sku_id == AGENT
    assert (opts.target_dedicated_nodes, opts.target_low_priority_nodes) == (2, 1)
    assert opts.start_task.user_identity.auto_user.elevation_level == "admin"
    assert opts.start_task.resource_files[0].file_mode == "0755"
    assert (
        opts.network_configuration.public_ip_address_configuration.ip_address_provisioning_type
        == "nopublicipaddresses"
    )
    assert {m.name: m.value for m in opts.metadata}[Marks.Pool.PIPELINE] == "p"


def observed(rollout: str, taken: set[str], version: str = "1.0.1") -> Observed:
    pool = spec_pool(rollout=rollout)
    opts = options(pool)
    image = PoolImage(IMAGE, version, ImageBase("linux"))
    desired = desired_of(pool)
    return Observed(
        pools=SimpleNamespace(),  # type: ignore[arg-type]  # not used by new_pool_id
        pool=pool,
        image=image,
        desired=desired,
        want=config_of(opts),
        family=[],
        taken=taken,
        target=None,
        live=None,
    )


def test_new_pool_ids() -> None:
    assert observed("blue_green", set()).new_pool_id() == "work"  # the first pool
    assert observed("blue_green", {"work"}).new_pool_id() == "work-v1-0-1"
    taken = {"work", "work-v1-0-1"}
    second = observed("blue_green", taken).new_pool_id()
    assert second.startswith("work-v1-0-1-") and len(second) == len("work-v1-0-1-") + 4
    assert observed("recreate", {"work-v1-0-1"}).new_pool_id() == "work"
    long = observed("blue_green", {"work"}, version="2026.11.250")
    assert long.new_pool_id() == "work-v2026-11-250"


def test_trusted_launch_image_asks_for_trusted_launch_pools() -> None:
    """A TrustedLaunch definition's image backs only pools with a Trusted Launch security
    profile: the tool sends one, and a live pool without it is replaced, not updated."""
    pool = spec_pool()
    image = PoolImage(IMAGE, "1.0.0", ImageBase("linux"), security_type="TrustedLaunch")
    assert image.pool_security == "trustedLaunch"
    assert (
        PoolImage(IMAGE, "1.0.0", ImageBase("linux"), "TrustedLaunchSupported").pool_security == ""
    )
    opts = create_options(pool, desired_of(pool, security=image.pool_security), lambda ref: "")
    profile = opts.virtual_machine_configuration.security_profile.as_dict()
    assert profile == {
        "securityType": "trustedLaunch",
        "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
    }
    plain = live_from(create_options(pool, desired_of(pool), lambda ref: ""))
    changes = diff(config_of(plain), config_of(opts))
    assert [c.name for c in changes] == ["security"] and changes[0].immutable
    assert describe(changes) == "security type (none) -> trustedlaunch"
    assert diff(config_of(live_from(opts)), config_of(opts)) == []
