"""Small in-test steps over an in-test world, for engine logic tests.

`World` is a tiny stand-in cloud: named things with a value and tags, optionally kept in a
JSON file so a child process (crash / signal tests) and the test share it. It counts
reads and writes per name and can be told to fail an operation with queued errors.
`Thing` is a step that makes one named thing, tagged like a real step tags its resources.
Steps reach the world as real steps reach Azure: through the run's clients (`ctx.clients`,
a `FakeCloud`: the world and how each step behaves in it).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchimage.azure.errors import AZURE
from batchimage.core.errors import PermanentAzureError, TransientAzureError
from batchimage.core.failures import Failures
from batchimage.core.ownership import Marks
from batchimage.core.refs import ResourceRef
from batchimage.core.retry import RetryPolicy
from batchimage.core.waiting import Clock
from batchimage.engine.coordinator import Engine
from batchimage.engine.result import Change, RunResult, new_run_id
from batchimage.engine.signals import StopFlag
from batchimage.state import Journal, LockHolder, State
from batchimage.state.local import LocalStateStore
from batchimage.steps.base import Outputs, RunContext, Step
from batchimage.ui import CollectSink

KIND = "test/thing"


class World:
    """Named things with values and tags; counts reads/writes; queued faults per operation."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.things: dict[str, dict[str, Any]] = {}
        self.writes: dict[str, int] = {}
        self.faults: dict[tuple[str, str], list[Exception]] = {}
        self.active = 0
        self.max_active = 0
        self.log: list[str] = []
        self._load()

    # persistence (only for the file-backed world shared with child processes)
    def _load(self) -> None:
        if self.path is not None and self.path.exists():
            doc = json.loads(self.path.read_text())
            self.things, self.writes = doc["things"], doc["writes"]

    def _save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"things": self.things, "writes": self.writes}))
            os.replace(tmp, self.path)

    def get(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            self._load()
            item = self.things.get(name)
            return dict(item) if item else None

    def put(self, name: str, value: str, tags: dict[str, str]) -> None:
        with self.lock:
            self._load()
            self.things[name] = {"value": value, "tags": dict(tags)}
            self.writes[name] = self.writes.get(name, 0) + 1
            self.log.append(f"put {name}")
            self._save()

    def delete(self, name: str) -> None:
        with self.lock:
            self._load()
            self.things.pop(name, None)
            self.writes[name] = self.writes.get(name, 0) + 1
            self.log.append(f"delete {name}")
            self._save()

    def total_writes(self) -> int:
        with self.lock:
            self._load()
            return sum(self.writes.values())

    def fail(self, name: str, op: str, *errors: Exception) -> None:
        """Make the next len(errors) `op` ("check"/"apply"/"destroy") calls of `name` raise."""
        self.faults.setdefault((name, op), []).extend(errors)

    def maybe_fail(self, name: str, op: str) -> None:
        with self.lock:
            queue = self.faults.get((name, op))
            error = queue.pop(0) if queue else None
        if error is not None:
            raise error

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


@dataclass
class FakeCloud:
    """What the in-test steps reach through `ctx.clients`: the world, and how each step
    behaves in it (by key: sleep_s, wait_forever, crash_before_put, ...)."""

    world: World = field(default_factory=World)
    behaviour: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of(self, key: str) -> dict[str, Any]:
        return self.behaviour.get(key, {})


@dataclass
class FakeSpec:
    """What a session reads of the spec of in-test steps: the pipeline's name."""

    name: str = "demo"


def cloud_of(ctx: RunContext) -> FakeCloud:
    """The in-test cloud the run's clients are."""
    found: FakeCloud = ctx.clients
    return found


class ThingOutputs(Outputs):
    name: str
    value: str


class Thing(Step[ThingOutputs]):
    """Makes the named thing whose value is its input plus its upstream values."""

    kind = "test_thing"

    def __init__(
        self,
        name: str,
        value: str = "v1",
        *,
        deps: Sequence[Step[Any]] = (),
        needs: Sequence[Step[Any]] = (),
        tagged: bool = True,
        note: str = "",
    ) -> None:
        self.key = name
        self.value = value
        self.note = note
        self.depends_on = tuple(deps)
        self.apply_needs = tuple(needs)
        self.tagged = tagged

    def inputs(self) -> dict[str, Any]:
        """`note` is an input that does not show in the outputs."""
        return {"value": self.value, "note": self.note} if self.note else {"value": self.value}

    def describe(self) -> str:
        return f"thing {self.key}"

    def check(self, ctx: RunContext) -> ThingOutputs | None:
        world = cloud_of(ctx).world
        world.maybe_fail(self.key, "check")
        item = world.get(self.key)
        if item is None:
            return None
        tags = item["tags"]
        by_run = tags.get(Marks.Tag.RUN) if self.tagged else None
        ref = ResourceRef(id=f"/things/{self.key}", kind=KIND, created_by_run=by_run)
        return ThingOutputs(
            name=self.key,
            value=item["value"],
            resources=(ref,),
            observed_fingerprint=tags.get(Marks.Tag.FINGERPRINT) if self.tagged else None,
        )

    def apply(self, ctx: RunContext) -> ThingOutputs | None:
        world = cloud_of(ctx).world
        how = cloud_of(ctx).of(self.key)
        world.enter()
        try:
            if how.get("crash_before_put"):
                os._exit(137)
            world.maybe_fail(self.key, "apply")
            if how.get("sleep_s"):
                time.sleep(how["sleep_s"])
            if how.get("wait_forever"):
                ctx.poll(lambda: None, f"thing {self.key} to appear", interval_s=0.05)
            if how.get("does_nothing"):
                return None
            upstream = [ctx.output(dep).value for dep in self.depends_on]
            value = self.value + (f"({','.join(upstream)})" if upstream else "")
            current = world.get(self.key)
            existed = current is not None
            tags = ctx.tags(current["tags"] if current else None)
            world.put(self.key, value, tags if self.tagged else {})
            if how.get("crash_after_put"):
                os._exit(137)
        finally:
            world.leave()
        # Like ARM's 201-vs-200: report as created only what did not exist before.
        made = () if existed else (ctx.created(f"/things/{self.key}", KIND),)
        return ThingOutputs(name=self.key, value=value, resources=made)

    @classmethod
    def destroy(cls, ctx: RunContext, outputs: ThingOutputs) -> None:
        world = cloud_of(ctx).world
        world.maybe_fail(outputs.name, "destroy")
        for ref in outputs.created():
            world.delete(ref.id.rsplit("/", 1)[-1])


class Probe(Step[ThingOutputs]):
    """A read-only step (like preflight): observes the world, never writes."""

    kind = "test_probe"
    read_only = True

    def __init__(self, name: str, setting: str = "s1") -> None:
        self.key = name
        self.setting = setting

    def inputs(self) -> dict[str, Any]:
        return {"setting": self.setting}

    def check(self, ctx: RunContext) -> ThingOutputs | None:
        return ThingOutputs(name=self.key, value="checks passed")

    def apply(self, ctx: RunContext) -> ThingOutputs | None:
        raise AssertionError("a read-only step found its result; apply must not run")


class FakeClock(Clock):
    """Time that moves only when slept; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def transient(code: str = "TooManyRequests", retry_after: float | None = None) -> Exception:
    return TransientAzureError(
        "slow down",
        code=code,
        status=429,
        operation="PUT thing",
        request_id="req-1",
        retry_after=retry_after,
    )


def permanent(code: str = "InvalidParameter") -> Exception:
    return PermanentAzureError(
        "the value is not allowed",
        code=code,
        status=400,
        operation="PUT thing",
        request_id="req-400",
        correlation_id="corr-400",
    )


class Harness:
    """Runs in-test steps through the real engine, journal and local state file."""

    def __init__(
        self,
        tmp: Path,
        cloud: FakeCloud | None = None,
        clock: Clock | None = None,
        name: str = "demo",
    ):
        self.cloud = cloud or FakeCloud()
        self.name = name
        self.state_path = tmp / "state" / f"{name}.json"
        self.clock = clock or FakeClock()
        self.sink = CollectSink()
        self.last: Engine | None = None

    def engine(
        self,
        steps: Sequence[Step[Any]],
        *,
        lock: bool = True,
        retry: RetryPolicy | None = None,
        max_workers: int = 4,
        stop_flag: StopFlag | None = None,
        grace_s: float = 5.0,
        failures: Failures = AZURE,
    ) -> Engine:
        """An engine over `steps` that meets exceptions as the commands' does (`failures`)."""
        store = LocalStateStore(self.state_path)
        holder = LockHolder(command="apply") if lock else None
        journal = Journal.open(store, self.name, spec_hash="h", lock=holder)
        ctx = RunContext(
            pipeline=self.name,
            run_id=new_run_id(),
            events=self.sink,
            clock=self.clock,
            clients_factory=lambda: self.cloud,
        )
        self.last = Engine(
            steps,
            ctx,
            journal,
            retry=retry or RetryPolicy(),
            failures=failures,
            max_workers=max_workers,
            stop_flag=stop_flag,
            grace_s=grace_s,
        )
        return self.last

    def apply(self, steps: Sequence[Step[Any]], **kwargs: Any) -> RunResult:
        target = kwargs.pop("target", None)
        engine = self.engine(steps, **kwargs)
        try:
            return engine.apply(target=target)
        finally:
            engine.journal.close()

    def plan(self, steps: Sequence[Step[Any]], *, offline: bool = False) -> dict[str, Change]:
        engine = self.engine(steps, lock=False)
        return {c.key: c for c in engine.plan(offline=offline)}

    def destroy(self, steps: Sequence[Step[Any]]) -> RunResult:
        engine = self.engine(steps)
        try:
            return engine.destroy()
        finally:
            engine.journal.close()

    def state(self) -> State:
        state = LocalStateStore(self.state_path).read()
        assert state is not None
        return state
