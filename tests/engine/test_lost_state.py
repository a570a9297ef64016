"""A state lost while cleanup runs leaves no orphans (issue 13, item 1): `batchimage apply`
as a subprocess is held by the sandbox at one delete of its cleanup (a delay fault on that
request), SIGKILLed there, and its state folder deleted. Then a new `apply`, or `destroy`,
finds the build resources by their tags and marks and deletes every one: nothing of the
build is left in ARM's list of the group, in the sandbox's store (run commands included)
or in the staging container.

The sandbox is this module's own (time scale 0.001): a held request runs on when its delay
ends, long after the test, and must not land in another test's sandbox.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from batchimage.azure.blobs import account_facts, blob_service
from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.core.ownership import STAGING_CONTAINER
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.runtime import start
from tests.engine.procs import REPO
from tests.engine.sandbox_cli import ci_env, cli, events, spawn

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

HOLD_S = 240  # far longer than the rest of a test: the held delete stays unanswered


@dataclass
class World:
    """This module's sandbox, its admin client and cloud profile, and where specs go."""

    root: Path
    env: dict[str, str]
    admin: SandboxAdmin
    profile: CloudProfile

    def spec(self, name: str) -> Path:
        """The quickstart (image, file staging, one pool) as pipeline `name`, in its folder."""
        folder = self.root / name
        shutil.copytree(REPO / "specs" / "files", folder / "files")
        data = yaml.safe_load((REPO / "specs" / "quickstart.yaml").read_text())
        data["name"] = name
        data["image"]["capture"]["gallery"]["gallery"] = f"g_{name.replace('-', '_')}"
        data["pools"][0]["id"] = name
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("lost")
    proc = start(root / "sandbox", env={"BATCHIMAGE_SANDBOX_TIME_SCALE": "0.001"})
    try:
        yield World(
            root=root,
            env=ci_env(root / "sandbox"),
            admin=SandboxAdmin(proc.connection),
            profile=sandbox_profile(proc.connection),
        )
    finally:
        proc.stop()


def build_left(world: World, name: str) -> list[str]:
    """What is left of pipeline `name`'s build: ARM's list of the group (names
    `<name>-<hash>-*`), the sandbox's store (nested resources too) and staged files."""
    clients = AzureClients(world.profile)
    listed = clients.resource.resources.list_by_resource_group("sandbox-rg")
    left = [f"arm {r.id}" for r in listed if str(r.name).startswith(f"{name}-")]
    store = world.admin.state()["tables"]["resources"]
    left += [f"store {key}" for key in store if f"/{name}-" in key]
    for raw in clients.storage.storage_accounts.list():
        service = blob_service(clients, account_facts(raw))
        container = service.get_container_client(STAGING_CONTAINER)
        if container.exists():
            staged = container.list_blobs(name_starts_with=f"{name}/")
            left += [f"blob {raw.name}/{STAGING_CONTAINER}/{b.name}" for b in staged]
    return sorted(left)


def killed_in_cleanup(world: World, spec: Path, held: str, log: Path) -> None:
    """Apply `spec` until cleanup's DELETE of `held` (a path part) is held, then SIGKILL
    the run and lose its state (the whole state folder, backup included)."""
    path = f"/{held}/{spec.stem}-[0-9a-f]{{8}}-[a-z]+$"  # the build's own, not a child's
    rule = {"kind": "delay", "method": "DELETE", "path": path, "delay": HOLD_S}
    world.admin.set_faults([rule])
    with log.open("wb") as err:
        proc = spawn(
            spec.parent, world.env, err, "apply", spec.name, "--yes", "--log-format", "json"
        )
    try:
        deadline = time.monotonic() + 240
        while world.admin.faults()["rules"][0]["fired"] == 0:
            assert proc.poll() is None, f"apply ended first:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "cleanup never reached the held delete"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    world.admin.clear_faults()
    shutil.rmtree(spec.parent / ".batchimage")
    steps = [e.get("step") for e in events(log)]
    assert "cleanup" in steps and "capture.version" in steps  # killed in the window


def kinds(left: list[str]) -> set[str]:
    """The resource types (or "blob") among `left`'s entries."""
    out = set()
    for entry in left:
        where, ident = entry.split(" ", 1)
        if where == "blob":
            out.add("blob")
        elif "/runcommands/" in ident:
            out.add("runcommands")
        else:
            out.add(ident.split("/providers/", 1)[1].split("/")[1].lower())
    return out


@pytest.mark.parametrize(
    ("held", "left_behind"),
    [
        ("virtualMachines", {"virtualmachines", "runcommands", "disks", "blob"}),
        ("disks", {"disks", "networkinterfaces", "blob"}),
    ],
)
def test_apply_after_a_state_lost_in_cleanup_deletes_the_rest(
    world: World, tmp_path: Path, held: str, left_behind: set[str]
) -> None:
    spec = world.spec(f"lost-apply-{held.lower()[:4]}")
    killed_in_cleanup(world, spec, held, tmp_path / "killed.log")
    left = build_left(world, spec.stem)
    assert left_behind <= kinds(left), left
    assert {"virtualnetworks", "networksecuritygroups"} <= kinds(left), left

    log = tmp_path / "again.log"
    done = cli(spec.parent, world.env, "apply", spec.name, "--yes", "--log-format", "json")
    log.write_text(done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert build_left(world, spec.stem) == []
    cleanup = [e for e in events(log) if e.get("step") == "cleanup" and e["event"] == "step_done"]
    assert cleanup and cleanup[0]["outcome"] == "deleted", cleanup
    # everything else was found as it was: no second image, no second build
    created = [e["step"] for e in events(log) if e.get("outcome") == "created"]
    assert created == [], created

    world.admin.reset_counters()
    again = cli(spec.parent, world.env, "apply", spec.name, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert world.admin.counters()["writes"] == 0


def test_destroy_after_a_state_lost_in_cleanup_finds_the_build(
    world: World, tmp_path: Path
) -> None:
    spec = world.spec("lost-destroy")
    killed_in_cleanup(world, spec, "disks", tmp_path / "killed.log")
    left = build_left(world, spec.stem)
    assert {"disks", "networkinterfaces", "virtualnetworks", "blob"} <= kinds(left), left

    done = cli(spec.parent, world.env, "destroy", spec.name, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "by their tags that the state did not list" in done.stdout, done.stdout
    for kind in ("disks", "networkInterfaces", "virtualNetworks", "networkSecurityGroups"):
        assert f"Microsoft.{'Compute' if kind == 'disks' else 'Network'}/{kind} " in done.stdout
    assert build_left(world, spec.stem) == []

    again = cli(spec.parent, world.env, "destroy", spec.name, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to destroy" in again.stdout
