"""Process-level crash test (issues 4 and 13): `batchimage` as a subprocess, SIGKILLed at
seeded random points spread over a clean run's work (counted in its events of work, so
where the kills land does not depend on the machine's speed or load), re-run until it
exits 0. Every
time, the sandbox's final inventory (resources by type via ARM, gallery versions, blobs,
Batch pools, and every record the sandbox's store holds) equals a clean run's: no
duplicates, no orphans. Three phases:
- apply: a first apply; after about every other kill (seeded) the state file and its .bak
  are deleted too (the build resources are adopted by their tags); then a re-apply makes
  zero write calls;
- update: an apply after the first customize script's edit (a new image version, the pool
  rolled out), then a re-apply makes zero write calls;
- destroy: after a converged apply; nothing of the pipeline is left.

The spec is the quickstart (image pipeline and its Batch pool) plus a VHD export to the
seeded storage account. Its own sandbox runs at time scale 0.0002, so a clean apply takes
a few seconds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
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
from tests.forkserver import Forked

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

TIME_SCALE = "0.0002"
KILLS = 8  # of the first apply per seed
# Of an update's apply and of a destroy per seed: few in the suite, more in the bench.
PHASE_KILLS = int(os.environ.get("BATCHIMAGE_CRASH_PHASE_KILLS", "3"))
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
    original: str  # the spec's text as first written

    def fresh(self) -> None:
        """A fresh seeded sandbox, no state and the spec as first written: as before any run."""
        self.admin.reset()
        shutil.rmtree(self.spec.parent / ".batchimage", ignore_errors=True)
        self.spec.write_text(self.original)

    def apply(self, log: Path) -> Forked:
        return self.run("apply", log)

    def destroy(self, log: Path) -> Forked:
        return self.run("destroy", log)

    def run(self, command: str, log: Path) -> Forked:
        """`batchimage <command> <spec> --yes --log-format json`, its stderr to `log`."""
        with log.open("wb") as err:
            return spawn(
                self.spec.parent, self.env, err, command, self.spec.name, "--yes",
                "--log-format", "json",
            )  # fmt: skip

    def edit_script(self, line: str) -> None:
        """Set the last line of the first customize step's script (a new image version)."""
        data = yaml.safe_load(self.spec.read_text())
        step = data["image"]["customize"][0]
        step["shell"] = "\n".join([*step["shell"].rstrip("\n").split("\n")[:-1], line, ""])
        self.spec.write_text(yaml.safe_dump(data, sort_keys=False))

    def lose_state(self) -> None:
        """Delete the state file and its .bak (the lock file stays, as a crash leaves it)."""
        state = self.spec.parent / ".batchimage" / "state" / f"{self.spec.stem}.json"
        for path in (state, state.with_name(state.name + ".bak")):
            path.unlink(missing_ok=True)


@dataclass
class CleanRun:
    """What a clean apply took and left."""

    work: int  # events of work it wrote (see `work_done`)
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
            original=spec.read_text(),
        )
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def clean(world: World, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    world.fresh()
    log = tmp_path_factory.mktemp("clean") / "apply.log"
    work = worked(world.apply, log)
    found = inventory(world)
    assert len(found["gallery_versions"]) == 1 and "1.0.0 succeeded" in found["gallery_versions"][0]
    assert any(b.endswith(".vhd 32212255232") for b in found["blobs"]), found["blobs"]
    assert not [r for r in found["store"] if "crashtest-" in r], found["store"]  # cleaned up
    assert len(found["pools"]) == 1 and found["pools"][0].endswith("/versions/1.0.0"), found
    return CleanRun(work, found)


WORK = {"step_applying", "step_waiting", "step_progress", "step_destroying", "step_destroyed"}


def work_done(log: Path) -> int:
    """The events of work (not of checks) the run in `log` has written since it started:
    how far it got, counted the same however fast or loaded the machine is."""
    seen = events(log)
    starts = [i for i, e in enumerate(seen) if e["event"] == "run_started"]
    if not starts:
        return 0
    return sum(
        1
        for e in seen[starts[-1] :]
        if e["event"] in WORK or (e["event"] == "step_done" and e.get("outcome") != "unchanged")
    )


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


def kill_points(seed: int | str, work: int, kills: int = KILLS) -> list[int]:
    """How many events of work each run writes before it is killed: kill k lands at a random
    point p_k of a clean run's `work` events (sorted, seeded); a resumed run skips what is
    done without work events, so it reaches p_k after p_k - p_(k-1) of its own."""
    rng = random.Random(seed)
    points = sorted(rng.randint(1, work) for _ in range(kills))
    return [max(1, b - a) for a, b in zip([0, *points], points, strict=False)]


def state_losses(seed: int, kills: int = KILLS) -> set[int]:
    """The kills after which the state file is deleted: about every other one (seeded)."""
    rng = random.Random(f"state-loss-{seed}")
    return {k for k in range(kills) if rng.random() < 0.5}


def last_step(log: Path) -> str:
    """The step the run was in when it ended (its last event naming one), or 'startup'."""
    seen = events(log)
    starts = [i for i, e in enumerate(seen) if e["event"] == "run_started"]
    named = [e for e in seen[starts[-1] if starts else 0 :] if e.get("step")]
    return f"{named[-1]['step']}:{named[-1]['event']}" if named else "startup"


def kill_runs(
    run: Callable[[Path], Forked],
    points: list[int],
    folder: Path,
    lose: tuple[set[int], Callable[[], None]] = (set(), lambda: None),
) -> tuple[list[str], list[str]]:
    """Start `run` once per point and SIGKILL it once it has written that many events of
    work (a run that ends first must exit 0); after kill k in `lose[0]`, call `lose[1]`
    (lose the state). The steps killed in, and those of them the state was lost after."""
    killed_in: list[str] = []
    lost_in: list[str] = []
    for index, point in enumerate(points):
        log = folder / f"run{index}.log"
        proc = run(log)
        while proc.poll() is None and work_done(log) < point:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # nothing once the run has ended and been reaped
        code = proc.wait(timeout=30)
        if code == -signal.SIGKILL:
            killed_in.append(last_step(log))
            if index in lose[0]:
                lose[1]()
                lost_in.append(killed_in[-1])
        else:
            assert code == 0, log.read_text()[-3000:]
    return killed_in, lost_in


def converge(run: Callable[[Path], Forked], folder: Path) -> None:
    """Re-run until it exits 0 (three tries)."""
    for attempt in range(3):
        log = folder / f"final{attempt}.log"
        if run(log).wait(timeout=60) == 0:
            return
    pytest.fail(f"the run did not finish after the kills:\n{log.read_text()[-3000:]}")


def report(seed: int, phase: str, killed_in: list[str], **extra: list[str]) -> None:
    """One JSON line for bench/crash_sweep.py: the seed, the phase, where the kills landed."""
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as out:
            line = {"seed": seed, "phase": phase, "killed_in": killed_in, **extra}
            out.write(json.dumps(line) + "\n")


def assert_reapply_writes_nothing(world: World, folder: Path) -> None:
    world.admin.reset_counters()
    log = folder / "reapply.log"
    assert world.apply(log).wait(timeout=60) == 0, log.read_text()[-3000:]
    assert world.admin.counters()["writes"] == 0


def sweep(
    world: World,
    seed: int,
    phase: str,
    clean: CleanRun,
    folder: Path,
    lose: tuple[set[int], Callable[[], None]] = (set(), lambda: None),
) -> list[str]:
    """A phase's kills (apply, update or destroy), its re-runs until exit 0 and its report
    line; the inventory must be the clean run's. The steps killed in."""
    kills = KILLS if phase == "apply" else PHASE_KILLS
    points = kill_points(seed if phase == "apply" else f"{phase}-{seed}", clean.work, kills)

    def run(log: Path) -> Forked:
        return world.run("destroy" if phase == "destroy" else "apply", log)

    killed_in, lost = kill_runs(run, points, folder, lose)
    converge(run, folder)
    report(seed, phase, killed_in, state_lost=lost)
    assert inventory(world) == clean.inventory, (killed_in, lost)
    # Kills land by events of work: most inside a first apply; an update's or destroy's
    # resumed runs may skip work the killed one finished in Azure, so only one is required
    # of them (the sweep's report counts how many landed).
    assert len(killed_in) >= (kills - 2 if phase == "apply" else 1), killed_in
    return killed_in


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_random_moments_leaves_what_a_clean_run_leaves(
    seed: int, world: World, clean: CleanRun, tmp_path: Path
) -> None:
    """Kills of a first apply; after the seed's choice of them the state is lost too."""
    world.fresh()
    lose = (state_losses(seed), world.lose_state)
    killed_in = sweep(world, seed, "apply", clean, tmp_path, lose)
    assert len({k.split(":")[0] for k in killed_in}) >= 4, killed_in  # spread over steps
    assert_reapply_writes_nothing(world, tmp_path)


UPDATE_LINE = 'echo "built by batchimage, update" > /etc/batchimage-release'


def converged(world: World, folder: Path) -> None:
    """A fresh sandbox and one clean apply of the spec as the world fixture wrote it."""
    world.fresh()
    log = folder / "converged.log"
    assert world.apply(log).wait(timeout=60) == 0, log.read_text()[-3000:]


def worked(run: Callable[[Path], Forked], log: Path) -> int:
    """The events of work of a run left to its end (it must exit 0)."""
    assert run(log).wait(timeout=60) == 0, log.read_text()[-3000:]
    return work_done(log)


@pytest.fixture(scope="module")
def clean_update(world: World, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    """An un-killed update: the first script line edited after a converged apply."""
    folder = tmp_path_factory.mktemp("clean_update")
    converged(world, folder)
    world.edit_script(UPDATE_LINE)
    work = worked(world.apply, folder / "update.log")
    found = inventory(world)
    assert len(found["gallery_versions"]) == 2, found["gallery_versions"]  # 1.0.0 kept
    assert len(found["pools"]) == 1 and "/versions/1.0.0" not in found["pools"][0], found
    return CleanRun(work, found)


@pytest.fixture(scope="module")
def clean_destroy(world: World, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    """An un-killed destroy after a converged apply; its inventory is a fresh sandbox's but
    for the two blob containers apply made (staging, VHD export), left empty: destroy deletes
    blobs, not containers (others' blobs may share them)."""
    folder = tmp_path_factory.mktemp("clean_destroy")
    world.fresh()
    before = inventory(world)
    converged(world, folder)
    work = worked(world.destroy, folder / "destroy.log")
    found = inventory(world)
    empty = ["sandboxstore/batchimage-staging/", "sandboxstore/vhds/"]
    assert found == {**before, "blobs": sorted([*before["blobs"], *empty])}
    return CleanRun(work, found)


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_during_an_update_leaves_what_a_clean_update_leaves(
    seed: int, world: World, clean_update: CleanRun, tmp_path: Path
) -> None:
    converged(world, tmp_path)
    world.edit_script(UPDATE_LINE)
    sweep(world, seed, "update", clean_update, tmp_path)
    assert_reapply_writes_nothing(world, tmp_path)


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_during_destroy_leaves_nothing(
    seed: int, world: World, clean_destroy: CleanRun, tmp_path: Path
) -> None:
    converged(world, tmp_path)
    sweep(world, seed, "destroy", clean_destroy, tmp_path)
