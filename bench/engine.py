"""Engine overhead: apply wall time against the critical path of simulated operations,
no-op re-apply time and writes, state save cost, and how promptly waits notice completion.

    PYTHONPATH=. python3 bench/engine.py [--runs 3] [--scale 1.0] [--write bench/engine.md]

The pipeline has the real pipeline's shape (preflight -> resolve -> group -> network ->
VM -> customize -> generalize -> capture -> two pools in parallel, cleanup after capture;
the gallery and image definition capture depends on, made beside the build steps since
capture says early that it is absent) with each step's apply a long-running operation of a
fixed simulated duration, waited on through `RunContext.wait` like a real LRO poller.
State is a real local file (atomic, fsynced). Targets (issue 4): overhead ratio <= 1.03
(first 1.10); no-op re-apply < 2 s with 0 writes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from batchimage.core.refs import ResourceRef
from batchimage.core.retry import RetryPolicy
from batchimage.engine.coordinator import Engine
from batchimage.engine.result import new_run_id
from batchimage.state import Journal, LockHolder
from batchimage.state.local import LocalStateStore
from batchimage.steps.base import Outputs, RunContext, Step
from batchimage.ui import NullSink

# (key, simulated seconds, depends_on keys, apply_needs keys)
PIPELINE: list[tuple[str, float, list[str], list[str]]] = [
    ("preflight", 0.10, [], []),
    ("resolve_image", 0.05, ["preflight"], []),
    ("group", 0.10, ["preflight"], []),
    ("network", 0.20, ["group"], []),
    ("build_vm", 0.60, ["network", "resolve_image"], []),
    ("customize", 0.40, ["build_vm"], []),
    ("generalize", 0.30, ["customize"], []),
    ("gallery", 0.10, ["group"], []),
    ("definition", 0.10, ["gallery", "resolve_image"], []),
    ("capture", 0.80, ["definition"], ["generalize"]),
    ("pool_a", 0.50, ["capture"], []),
    ("pool_b", 0.50, ["capture"], []),
    ("cleanup", 0.30, ["capture"], []),
]


class Done(Outputs):
    name: str


class Operation:
    """A long-running operation that finishes after `seconds` (an LROPoller look-alike)."""

    def __init__(self, seconds: float) -> None:
        self._thread = threading.Thread(target=time.sleep, args=(seconds,), daemon=True)
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def result(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


class World:
    """The simulated cloud, reached by the steps as their run's clients (`ctx.clients`)."""

    def __init__(self) -> None:
        self.made: set[str] = set()
        self.writes = 0
        self.lock = threading.Lock()


class SimStep(Step[Done]):
    kind = "bench_step"

    def __init__(self, key: str, seconds: float) -> None:
        self.key = key
        self.seconds = seconds

    def inputs(self) -> dict[str, Any]:
        return {"seconds": self.seconds}

    def check(self, ctx: RunContext) -> Done | None:
        world: World = ctx.clients
        if self.key not in world.made:
            return None
        ref = ResourceRef(id=f"/bench/{self.key}", kind="bench", created_by_run="r")
        return Done(name=self.key, resources=(ref,), observed_fingerprint=None)

    def apply(self, ctx: RunContext) -> Done | None:
        world: World = ctx.clients
        ctx.wait(Operation(self.seconds * SCALE), f"{self.key} to finish")
        with world.lock:
            world.made.add(self.key)
            world.writes += 1
        return None


class EarlySimStep(SimStep):
    """A SimStep that says early when its result is absent (as capture.version does)."""

    kind = "bench_early_step"

    def absent(self, ctx: RunContext) -> bool:
        world: World = ctx.clients
        return self.key not in world.made


SCALE = 1.0
HISTORY = (
    "Before capture answered `absent` early (the engine of bcd4393^, same machine, load "
    "0.1, 5 runs): this shape 1.090 (3.271 s: the gallery and definition were made before "
    "the build started); the earlier 11-step shape without them 1.034 (3.103 s)."
)
SANDBOX_SECTION = "## Engine overhead against the sandbox"


def build(extra: int = 0) -> list[Step[Any]]:
    steps: dict[str, SimStep] = {}
    for key, seconds, deps, needs in PIPELINE:
        step = EarlySimStep(key, seconds) if needs else SimStep(key, seconds)
        step.depends_on = tuple(steps[d] for d in deps)
        step.apply_needs = tuple(steps[n] for n in needs)
        steps[key] = step
    out: list[Step[Any]] = list(steps.values())
    for index in range(extra):  # more pools, for the no-op scaling figure
        pool = SimStep(f"pool_{index:03d}", 0.0)
        pool.depends_on = (steps["capture"],)
        out.append(pool)
    return out


def critical_path() -> float:
    finish: dict[str, float] = {}
    for key, seconds, deps, needs in PIPELINE:
        start = max((finish[d] for d in deps + needs), default=0.0)
        finish[key] = start + seconds * SCALE
    return max(finish.values())


def engine(folder: Path, world: World, steps: list[Step[Any]]) -> Engine:
    store = LocalStateStore(folder / "bench.json")
    journal = Journal.open(store, "bench", lock=LockHolder(command="apply"))
    ctx = RunContext(
        pipeline="bench", run_id=new_run_id(), events=NullSink(), clients_factory=lambda: world
    )
    return Engine(steps, ctx, journal, retry=RetryPolicy(), max_workers=4)


def run_once(folder: Path, world: World, steps: list[Step[Any]], *, with_plan: bool) -> float:
    eng = engine(folder, world, steps)
    try:
        start = time.perf_counter()
        if with_plan:
            eng.plan()
        eng.apply()
        return time.perf_counter() - start
    finally:
        eng.journal.close()


def measure(runs: int) -> dict[str, Any]:
    applies, noops, noop_writes, big_noops, saves, prompt = [], [], [], [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            world = World()
            applies.append(run_once(Path(tmp), world, build(), with_plan=False))
            before = world.writes
            noops.append(run_once(Path(tmp), world, build(), with_plan=True))
            noop_writes.append(world.writes - before)
        with tempfile.TemporaryDirectory() as tmp:
            world = World()
            run_once(Path(tmp), world, build(extra=50), with_plan=False)
            big_noops.append(run_once(Path(tmp), world, build(extra=50), with_plan=True))
        saves.append(save_cost())
        prompt.append(wait_promptness())
    return {
        "apply": applies,
        "noop": noops,
        "noop_writes": noop_writes,
        "noop61": big_noops,
        "save_ms": saves,
        "prompt_ms": prompt,
    }


def save_cost(count: int = 50) -> float:
    """Median milliseconds of one state save (temp file, fsync, rename, fsync folder)."""
    from batchimage.state import State, StepRecord

    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStateStore(Path(tmp) / "s.json")
        store.lock(LockHolder(command="bench"))
        state = State(pipeline="bench")
        times = []
        for index in range(count):
            state.steps[f"s{index}"] = StepRecord(kind="k", fingerprint=str(index))
            start = time.perf_counter()
            store.write(state)
            times.append(time.perf_counter() - start)
        store.unlock()
    return statistics.median(times) * 1000


def wait_promptness(seconds: float = 0.3) -> float:
    """Milliseconds between an operation finishing and `RunContext.wait` returning."""
    ctx = RunContext(pipeline="bench", run_id="r", events=NullSink())
    op = Operation(seconds)
    start = time.perf_counter()
    ctx.wait(op, "operation")
    return (time.perf_counter() - start - seconds) * 1000


def report(figures: dict[str, Any], runs: int) -> str:
    path = critical_path()
    wall = statistics.median(figures["apply"])
    ratio = wall / path
    noop = statistics.median(figures["noop"])
    writes = max(figures["noop_writes"])
    lines = [
        "## Engine overhead",
        "",
        "`PYTHONPATH=. python3 bench/engine.py --write bench/engine.md`: the real pipeline's "
        f"shape ({len(PIPELINE)} steps, two pools in parallel, build steps needed by capture, "
        "made beside the gallery and definition capture depends on) with each "
        "apply a simulated long-running operation waited on through `RunContext.wait`; real "
        "local state file (atomic writes, fsync). Critical path = the longest chain of "
        "simulated operation times.",
        "",
        f"Machine: {platform.machine()}, {_cores()} cores, Python {platform.python_version()}, "
        f"load average {_load():.1f} (other work on the machine inflates the ratio); "
        f"median of {runs} runs.",
        "",
        "| measure | value | target | met |",
        "| --- | ---: | ---: | :---: |",
        f"| critical path of simulated operations | {path:.3f} s |  |  |",
        f"| apply wall time (first run, all created) | {wall:.3f} s |  |  |",
        f"| overhead ratio wall / critical path | {ratio:.3f} | <= 1.03 (first 1.10) | "
        f"{'yes' if ratio <= 1.03 else 'no'} ({'yes' if ratio <= 1.10 else 'no'}) |",
        f"| no-op re-apply (plan + apply, {len(PIPELINE)} steps) | {noop:.3f} s | < 2 s | "
        f"{'yes' if noop < 2 else 'no'} |",
        f"| write calls in the no-op re-apply | {writes} | 0 | {'yes' if writes == 0 else 'no'} |",
        f"| no-op re-apply with {len(PIPELINE) + 50} steps | "
        f"{statistics.median(figures['noop61']):.3f} s |  |  |",
        f"| one state save (fsync'd) | {statistics.median(figures['save_ms']):.2f} ms |  |  |",
        f"| wait returns after the operation ends | "
        f"{statistics.median(figures['prompt_ms']):.1f} ms late |  |  |",
        "",
        HISTORY,
        "",
        "Per step the engine adds one read-only check (none before the apply of a step "
        "that answered `absent` early), one fsync'd save before the first write (so a "
        "crash shows `in_flight`) and one batched save after; waits return within a "
        "millisecond of the operation ending.",
        "",
        "The sandbox-backed figures (the quickstart through the real SDK: no-op re-apply, "
        "overhead with the sandbox latency model) are in the next section "
        "(`bench/quickstart.py`).",
    ]
    return "\n".join(lines) + "\n"


def _cores() -> int:
    return os.cpu_count() or 1


def _load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    global SCALE
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply simulated times")
    parser.add_argument("--write", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    SCALE = args.scale
    text = report(measure(args.runs), args.runs)
    print(text)
    if args.write:  # keep the sandbox-backed section bench/quickstart.py writes after ours
        old = args.write.read_text() if args.write.exists() else ""
        kept = old[old.index(SANDBOX_SECTION) :] if SANDBOX_SECTION in old else ""
        args.write.write_text(text + ("\n" + kept if kept else ""))


if __name__ == "__main__":
    main()
