"""Process-level crash test (issue 4): `batchimage apply` as a subprocess, SIGKILLed at
seeded random moments spread over a clean run's duration, re-run until it exits 0. Every
time, the sandbox's final inventory (resources by type via ARM, gallery versions, blobs,
Batch pools, and every record the sandbox's store holds) equals a clean run's: no
duplicates, no orphans. A final re-apply then makes zero write calls.

The spec is the quickstart (image pipeline and its Batch pool) plus a VHD export to the
seeded storage account. Its own sandbox runs at time scale 0.001, so a clean apply takes
a few seconds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from batchimage.azure.arm import text
from batchimage.azure.blobs import account_facts, blob_service
from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.runtime import start
from tests.engine.procs import REPO
from tests.engine.sandbox_cli import ci_env, events, spawn

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

TIME_SCALE = "0.0002"
KILLS = 8
# One seed in the suite; bench/crash_sweep.py runs many (BATCHIMAGE_CRASH_SEEDS=1,2,...) and
# reads each seed's kill points from BATCHIMAGE_CRASH_REPORT (a JSON line per seed).
SEEDS = tuple(int(s) for s in os.environ.get("BATCHIMAGE_CRASH_SEEDS", "29").split(","))
REPORT = os.environ.get("BATCHIMAGE_CRASH_REPORT")


@dataclass
class World:
    """The crash test's own sandbox, its clients, and the spec folder."""

    folder: Path
    env: dict[str, str]
    admin: SandboxAdmin
    profile: CloudProfile
    spec: Path

    def fresh(self) -> None:
        """A fresh seeded sandbox and no state: as before any run."""
        self.admin.reset()
        shutil.rmtree(self.spec.parent / ".batchimage", ignore_errors=True)

    def apply(self, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as err:
            return spawn(
                self.spec.parent, self.env, err, "apply", self.spec.name, "--yes",
                "--log-format", "json",
            )  # fmt: skip


@dataclass
class CleanRun:
    """What a clean apply took and left."""

    work: float  # seconds from its run_started event to its end
    inventory: dict[str, list[str]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("crash")
    proc = start(root / "sandbox", env={"BATCHIMAGE_SANDBOX_TIME_SCALE": TIME_SCALE})
    try:
        conn = proc.connection
        specs = root / "spec"
        shutil.copytree(REPO / "specs" / "files", specs / "files")
        data = yaml.safe_load((REPO / "specs" / "quickstart.yaml").read_text())
        data["name"] = "crashtest"
        data["image"]["capture"]["vhd_export"] = {"storage_account": conn.storage_account}
        spec = specs / "crashtest.yaml"
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
        yield World(
            folder=root / "sandbox",
            env=ci_env(root / "sandbox"),
            admin=SandboxAdmin(conn),
            profile=sandbox_profile(conn),
            spec=spec,
        )
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def clean(world: World, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    world.fresh()
    log = tmp_path_factory.mktemp("clean") / "apply.log"
    proc = world.apply(log)
    started = wait_for_start(proc, log)
    assert proc.wait(timeout=60) == 0, log.read_text()
    assert started is not None
    found = inventory(world)
    assert len(found["gallery_versions"]) == 1 and "1.0.0 succeeded" in found["gallery_versions"][0]
    assert any(b.endswith(".vhd 32212255232") for b in found["blobs"]), found["blobs"]
    assert not [r for r in found["store"] if "crashtest-" in r], found["store"]  # cleaned up
    assert len(found["pools"]) == 1 and found["pools"][0].endswith("/versions/1.0.0"), found
    return CleanRun(time.monotonic() - started, found)


def wait_for_start(proc: subprocess.Popen[bytes], log: Path) -> float | None:
    """When the run's `run_started` event appeared (monotonic), or None if it ended first."""
    while proc.poll() is None:
        if '"event": "run_started"' in log.read_text(errors="replace"):
            return time.monotonic()
        time.sleep(0.005)
    return None


def inventory(world: World) -> dict[str, list[str]]:
    """Everything the sandbox holds, by kind, as sorted ids (volatile fields left out)."""
    clients = AzureClients(world.profile)  # new clients: a reset sandbox has new account keys
    groups = sorted(str(g.name) for g in clients.resource.resource_groups.list())
    resources = sorted(
        f"{r.type} {r.id}".lower()
        for group in groups
        for r in clients.resource.resources.list_by_resource_group(group)
    )
    compute = clients.compute
    versions = []
    for gallery in compute.galleries.list():
        group, name = str(gallery.id).split("/")[4], str(gallery.name)
        for image in compute.gallery_images.list_by_gallery(group, name):
            found = compute.gallery_image_versions.list_by_gallery_image(
                group, name, str(image.name)
            )
            versions += [f"{v.id} {text(v.provisioning_state)}".lower() for v in found]
    blobs = []
    pools = []
    for raw in clients.storage.storage_accounts.list():
        account = account_facts(raw)
        service = blob_service(clients, account)
        for container in service.list_containers():
            listed = service.get_container_client(container.name).list_blobs()
            blobs += [f"{account.name}/{container.name}/{b.name} {b.size}" for b in listed]
            blobs.append(f"{account.name}/{container.name}/")
    for batch_account in clients.batch_management.batch_account.list():
        batch = clients.batch(str(batch_account.account_endpoint))
        listed_pools = batch.list_pools()
        pools += [
            f"{batch_account.name}/{p.id} {p.vm_size} {p.current_dedicated_nodes} "
            f"{p.virtual_machine_configuration.image_reference.virtual_machine_image_id}".lower()
            for p in listed_pools
            if p.virtual_machine_configuration is not None
        ]
    store = world.admin.state()["tables"]["resources"]
    return {
        "groups": groups,
        "resources": resources,
        "gallery_versions": sorted(versions),
        "blobs": sorted(blobs),
        "pools": sorted(pools),
        "store": sorted(store),
    }


def kill_delays(seed: int, clean: CleanRun) -> list[float]:
    """Seconds after each run's start of work to kill it: kill k lands at a random point p_k
    of the clean run's work (sorted, seeded); a resumed run skips what is done in moments,
    so it reaches p_k about p_k - p_(k-1) after it starts working."""
    rng = random.Random(seed)
    points = sorted(rng.uniform(0.0, clean.work) for _ in range(KILLS))
    return [b - a for a, b in zip([0.0, *points], points, strict=False)]


def last_step(log: Path) -> str:
    """The step the run was in when it ended (its last event naming one), or 'startup'."""
    seen = events(log)
    starts = [i for i, e in enumerate(seen) if e["event"] == "run_started"]
    named = [e for e in seen[starts[-1] if starts else 0 :] if e.get("step")]
    return f"{named[-1]['step']}:{named[-1]['event']}" if named else "startup"


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_random_moments_leaves_what_a_clean_run_leaves(
    seed: int, world: World, clean: CleanRun, tmp_path: Path
) -> None:
    world.fresh()
    killed_in: list[str] = []
    for index, delay in enumerate(kill_delays(seed, clean)):
        log = tmp_path / f"run{index}.log"
        proc = world.apply(log)
        started = wait_for_start(proc, log)
        try:
            code = proc.wait(timeout=delay if started is not None else 0)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)  # a run that just ended is a zombie: no effect
            code = proc.wait(timeout=30)
        if code == -signal.SIGKILL:
            killed_in.append(last_step(log))
        else:
            assert code == 0, log.read_text()[-3000:]
    for attempt in range(3):
        log = tmp_path / f"final{attempt}.log"
        if world.apply(log).wait(timeout=60) == 0:
            break
    else:
        pytest.fail(f"apply did not finish after the kills:\n{log.read_text()[-3000:]}")

    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as out:
            out.write(json.dumps({"seed": seed, "killed_in": killed_in}) + "\n")
    assert len(killed_in) >= KILLS - 2, killed_in  # the kills landed inside runs
    assert len({k.split(":")[0] for k in killed_in}) >= 4, killed_in  # spread over steps
    assert inventory(world) == clean.inventory, killed_in

    world.admin.reset_counters()
    log = tmp_path / "reapply.log"
    assert world.apply(log).wait(timeout=60) == 0, log.read_text()[-3000:]
    assert world.admin.counters()["writes"] == 0
