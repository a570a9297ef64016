"""The state document: a versioned JSON journal of one pipeline, and the store interface.

Azure is the source of truth; the state is a journal and an output cache. It records,
per step: status, the fingerprint of the inputs it was applied with (plus one hash per
input, so `plan` can say which input changed), its typed outputs, the resources this
pipeline created, attempts, the last error and timestamps; and a short run history.

Backends implement `StateStore`: `batchimage.state.local.LocalStateStore` (a file with a
kernel lock) and `batchimage.state.blob.BlobStateStore` (a blob with a renewed lease).
`parse_state` / `dump_state` are the only way bytes become a `State` and back: they refuse
corrupt or newer documents with a message that says how to recover, and refuse to write
anything that looks like a secret.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batchimage.core.errors import StateError, StateLockedError
from batchimage.core.redact import find_secret_in_lines
from batchimage.core.refs import ResourceRef

SCHEMA_VERSION = 1
RUN_HISTORY = 50
MAX_DEPTH = 64
"""Deepest nesting of lists and maps a state document may have: the state's own shape goes
about 8 levels deep; a document far deeper is damaged or foreign (and could not be written
back: serialising stops at 255 levels)."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (what the state records)."""
    return datetime.now(UTC)


class StepStatus(StrEnum):
    """Where a step stands in the journal."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"  # apply started and did not finish (crash, Ctrl-C): re-apply
    DONE = "done"
    FAILED = "failed"
    DESTROYED = "destroyed"


class ErrorRecord(BaseModel):
    """The last failure of a step, as a support ticket needs it (secrets redacted)."""

    model_config = ConfigDict(extra="forbid")

    message: str
    code: str | None = None
    status: int | None = None
    operation: str | None = None
    request_id: str | None = None
    at: datetime = Field(default_factory=utcnow)


class StepRecord(BaseModel):
    """What the journal knows about one step."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="Step kind (class registry name), so destroy works from state.")
    status: StepStatus = StepStatus.PENDING
    fingerprint: str | None = None
    inputs: dict[str, str] = Field(
        default_factory=dict, description="One short hash per input, to name what changed."
    )
    outputs: dict[str, Any] | None = None
    created: list[ResourceRef] = Field(default_factory=list)
    attempts: int = 0
    last_error: ErrorRecord | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_id: str | None = None


class RunRecord(BaseModel):
    """One command run against this state."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    command: str
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    result: Literal["running", "ok", "failed", "interrupted"] = "running"
    pid: int = Field(default_factory=os.getpid)
    host: str = Field(default_factory=socket.gethostname)


class State(BaseModel):
    """The whole state document of one pipeline."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    pipeline: str
    spec_hash: str | None = None
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    runs: list[RunRecord] = Field(default_factory=list)

    def created_resources(self) -> list[tuple[str, ResourceRef]]:
        """Every resource this pipeline created, as (step key, ref), in step order."""
        return [(key, ref) for key, rec in self.steps.items() for ref in rec.created]


class LockHolder(BaseModel):
    """Who holds a state lock: enough for a person to find the process."""

    model_config = ConfigDict(extra="ignore")

    pid: int = Field(default_factory=os.getpid)
    host: str = Field(default_factory=socket.gethostname)
    user: str = Field(default_factory=lambda: _user())
    started_at: datetime = Field(default_factory=utcnow)
    run_id: str = ""
    command: str = ""
    state: str = Field("", description="Where the holder's state is (path or blob URL).")

    def describe(self) -> str:
        """One line naming the holder: command, pid, host, user, start time."""
        what = f"`batchimage {self.command}`" if self.command else "a run"
        when = self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{what} (pid {self.pid} on {self.host}, user {self.user}, since {when})"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def live_run(state: State) -> RunRecord | None:
    """A run the state records as running whose process still runs on this host (not us)."""
    from batchimage.core.liveness import process_state

    for run in reversed(state.runs):
        if run.result != "running" or run.pid == os.getpid():
            continue
        if process_state(run.pid, run.host, run.started_at) == "alive":
            return run
    return None


def refuse_live_run(state: State, where: str) -> None:
    """StateLockedError when the state records a run that is still running (a lock that was
    bypassed: its lock file removed, say): the holder's pid is checked, not only the lock."""
    run = live_run(state)
    if run is None:
        return
    since = run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    raise StateLockedError(
        f"state {where} is in use by `batchimage {run.command}` (pid {run.pid} on {run.host}, "
        f"run {run.run_id}, since {since}), which is still running although the state's lock "
        f"is free. Wait for it to finish, or stop it (kill {run.pid}) and run apply again."
    )


class StateStore(Protocol):
    """Where one pipeline's state lives; `lock` before `write`."""

    where: str  # a human description of the location (path or blob URL)

    def lock(self, holder: LockHolder) -> LockHolder | None:
        """Take the lock or raise StateLockedError naming the holder.

        Returns the holder of a stale lock that was taken over (a dead process), else None.
        """
        ...

    def unlock(self) -> None:
        """Release the lock (idempotent)."""
        ...

    def read(self) -> State | None:
        """The stored state, None when there is none yet; StateError if unreadable."""
        ...

    def write(self, state: State) -> None:
        """Store `state` atomically (the previous good copy is kept as a backup)."""
        ...

    def force_unlock(self, *, force: bool = False) -> str:
        """Break a lock left by a run that is gone; return what was done, for the user.
        A holder that may be alive is refused (StateLockedError) unless `force` (and the
        backend can break it)."""
        ...

    def on_lost(self, callback: Callable[[str], None] | None) -> None:
        """Have `callback(message)` called as soon as this run loses the lock."""
        ...

    def holder(self) -> LockHolder | None:
        """Who holds the lock now (None when free), without taking it."""
        ...


def recovery_hint(where: str, backup: str) -> str:
    """What a person can do when the state at `where` cannot be used."""
    return (
        f"The previous good copy is {backup} (if it exists): inspect it and restore it "
        f"over {where}, or move {where} aside to start from an empty state (the next "
        "apply finds and adopts existing resources by their deterministic names). "
        "batchimage did not change the file."
    )


def parse_state(data: bytes, *, where: str, backup: str) -> State:
    """Bytes -> State; a corrupt, foreign or newer document raises StateError (file untouched)."""

    def corrupt(why: str) -> StateError:
        return StateError(f"state {where} is unreadable: {why}. {recovery_hint(where, backup)}")

    if not data.strip():
        raise corrupt("the file is empty (truncated)")
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupt(f"not valid JSON ({exc})") from exc
    except RecursionError:
        raise corrupt(f"nested deeper than a state ever is (over {MAX_DEPTH} levels)") from None
    depth = nesting_depth(raw)
    if depth > MAX_DEPTH:
        raise corrupt(f"nested {depth} levels deep; a state has at most {MAX_DEPTH}")
    if not isinstance(raw, dict) or not isinstance(raw.get("schema_version"), int):
        raise corrupt("not a batchimage state document (no schema_version)")
    version = raw["schema_version"]
    if version > SCHEMA_VERSION:
        raise StateError(
            f"state {where} was written by a newer batchimage (state schema {version}; this "
            f"version reads up to {SCHEMA_VERSION}). Upgrade batchimage to use it; "
            "batchimage did not change the file."
        )
    raw = migrate(raw)
    try:
        return State.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise corrupt(f"{loc}: {first['msg']}") from exc


def nesting_depth(value: Any) -> int:
    """How deeply lists and maps nest in parsed JSON (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth + 1)
            pending.extend((item, depth + 1) for item in node)
    return deepest


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older state document up to SCHEMA_VERSION (one function per version step)."""
    # Version 1 is the first; a future version adds `MIGRATIONS[n](raw) -> raw` here.
    return raw


def dump_state(state: State) -> bytes:
    """State -> bytes; refuses (StateError) to serialise anything that looks like a secret."""
    text = state.model_dump_json(indent=2) + "\n"
    # Scanned as JSON, and with its escaped line breaks as line breaks (a secret that
    # starts a line of a recorded error starts a line there); unchanged lines once.
    kind = find_secret_in_lines(text)
    if kind is not None:
        raise StateError(
            f"refusing to write state: it would contain a {kind}. This is a bug in a step's "
            "outputs (outputs must hold ids and names, never keys, tokens or SAS URLs)"
        )
    return text.encode()


class Journal:
    """The state of one pipeline, held by one run; only the engine's main thread writes it."""

    def __init__(self, store: StateStore | None, state: State) -> None:
        self.store = store
        self.state = state
        self.run: RunRecord | None = None
        self.stale: LockHolder | None = None
        self.dirty = False
        self._locked = False

    @classmethod
    def open(
        cls,
        store: StateStore,
        pipeline: str,
        *,
        spec_hash: str | None = None,
        lock: LockHolder | None = None,
    ) -> Journal:
        """Lock (if `lock` names a holder) then read; a missing state starts empty."""
        stale = store.lock(lock) if lock is not None else None
        try:
            state = store.read()
            if state is None:
                state = State(pipeline=pipeline, spec_hash=spec_hash)
            elif state.pipeline != pipeline:
                raise StateError(
                    f"state {store.where} belongs to pipeline {state.pipeline!r}, not "
                    f"{pipeline!r}; point --state at this pipeline's file"
                )
            if lock is not None:
                refuse_live_run(state, store.where)
        except BaseException:
            if lock is not None:
                store.unlock()
            raise
        journal = cls(store, state)
        journal.stale = stale
        journal._locked = lock is not None
        if spec_hash is not None and lock is not None:
            state.spec_hash = spec_hash
        return journal

    def begin(self, command: str, run_id: str) -> None:
        """Add a run to the history (saved at once)."""
        self.run = RunRecord(run_id=run_id, command=command)
        self.state.runs = [*self.state.runs, self.run][-RUN_HISTORY:]
        self.save()

    def finish(self, result: Literal["ok", "failed", "interrupted"]) -> None:
        """Close the current run record and save."""
        if self.run is not None:
            self.run.result = result
            self.run.finished_at = utcnow()
        self.save()

    def record(self, key: str, kind: str) -> StepRecord:
        """The record of step `key`, created (pending) if missing."""
        rec = self.state.steps.get(key)
        if rec is None:
            rec = StepRecord(kind=kind)
            self.state.steps[key] = rec
        return rec

    def save(self) -> None:
        """Write the state if this journal holds the lock (plan never writes)."""
        self.dirty = False
        if self.store is not None and self._locked:
            self.store.write(self.state)

    def flush(self) -> None:
        """Save if something changed since the last save (the engine batches transitions)."""
        if self.dirty:
            self.save()

    def close(self) -> None:
        """Release the lock."""
        if self.store is not None and self._locked:
            self.store.unlock()
            self._locked = False
