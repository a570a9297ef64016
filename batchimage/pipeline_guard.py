"""One run at a time per pipeline, whatever state file each run uses.

`apply` and `destroy` take two guards besides the state's own lock:

- **On this machine**, a name lock keyed on the pipeline's identity: its cloud,
  subscription, resource group and name (a sandbox, and so a `--sandbox` rehearsal, is a
  cloud of its own). A second run of the pipeline stops at once naming the first, even
  with another `--state` file.
- **In Azure**, a run marker on the pipeline's resource group (the tag
  `batchimage-active-run`, `batchimage.azure.run_marker`). The marker names its pipeline,
  and only a marker of the same pipeline (or one naming none: an older batchimage's)
  stops a run: pipelines sharing a group run side by side, the second one's marker in a
  tag of its own (`batchimage-active-run-<pipeline>`). It is read before the plan, so a
  run of the pipeline started elsewhere (another machine, another state) is named before
  this one writes anything; it is set before this run's first write, renewed while it
  runs, read back each time (a run that finds another's marker in place of its own stops
  at once), and removed at the end. A marker counts until its `until` time and, when
  written on this host, only while its process runs (a killed run's marker is taken over).

A run that changes nothing writes no marker (a re-apply with nothing to do makes no
write call at all).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from batchimage.core import threads
from batchimage.core.errors import AzureError, BatchImageError, StateLockedError
from batchimage.core.liveness import process_state
from batchimage.core.namelock import NameLock
from batchimage.core.ownership import Marks
from batchimage.state import LockHolder, utcnow

MARKER_TTL_S = 300.0  # a marker nobody renews stops counting after this long
RENEW_S = 60.0  # how often a run renews (and reads back) its marker
PENDING_S = 5.0  # how often a run tries to mark a group that did not exist yet
MAX_MARKER = 256  # Azure's limit on a tag value
_choosing = threading.Lock()  # a first marking: which tag, then the write


class RunMarker(BaseModel):
    """What the marker tag says about the run changing the pipeline (at most 256 chars)."""

    model_config = ConfigDict(extra="ignore")

    pid: int
    host: str
    user: str = ""
    command: str = ""
    started_at: datetime
    until: datetime
    pipeline: str = ""  # the pipeline the run changes ("": a marker of an older batchimage)

    def describe(self) -> str:
        """One line naming the run: command, pid, host, user, start time."""
        what = f"`batchimage {self.command}`" if self.command else "a run"
        when = self.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{what} (pid {self.pid} on {self.host}, user {self.user}, since {when})"

    def counts(self) -> bool:
        """Whether the marker still stands: not expired, and its process alive if on this host."""
        if self.until <= utcnow():
            return False
        return process_state(self.pid, self.host, self.started_at) != "gone"


def parse_marker(value: str | None) -> RunMarker | None:
    """The marker a tag value holds; None for none or an unreadable one."""
    if not value:
        return None
    try:
        return RunMarker.model_validate_json(value)
    except (ValidationError, ValueError):
        return None


def identity(arm_endpoint: str, subscription: str, group: str, name: str) -> str:
    """What makes two runs runs of the same pipeline, as a key: the cloud (its ARM
    endpoint: a sandbox has its own), the subscription, the resource group and the name."""
    return "pipeline:" + json.dumps([arm_endpoint.rstrip("/"), subscription, group.lower(), name])


class PipelineGuard:
    """The two guards of one run of one pipeline; see the module docstring."""

    def __init__(self, spec: Any, holder: LockHolder) -> None:
        self.name = spec.name
        self.group = str(spec.resource_group)
        self.holder = holder
        self._name_lock: NameLock | None = None
        self._clients: Any = None
        self._on_lost: Callable[[str], None] | None = None
        self._say: Callable[[str], None] | None = None
        self._marked = False
        self._tag: str | None = None  # the tag this run's marker is in (once marked)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- on this machine -----------------------------------------------------------------

    def lock_here(self, clients: Any) -> None:
        """Take the pipeline's name lock, or raise StateLockedError naming its holder."""
        if self._name_lock is not None:
            return
        key = identity(clients.profile.arm_endpoint, clients.subscription_id, self.group, self.name)
        self._name_lock = NameLock(key, self.holder.model_dump_json())
        said = self._name_lock.acquire()
        if said is None:
            return
        other = _holder(said)
        where = f", with state {other.state}" if other and other.state else ""
        who = other.describe() if other else "another process"
        raise StateLockedError(
            f"pipeline {self.name} is being changed by {who}{where} on this machine. Two runs "
            "of one pipeline would collide in Azure, whatever state file each uses: wait for "
            f"it to finish, or stop it (kill {other.pid if other else 'PID'}) and run again."
        )

    # -- in Azure ------------------------------------------------------------------------

    def check(self, clients: Any) -> None:
        """Raise StateLockedError when another run's marker of this pipeline stands on the
        group."""
        from batchimage.azure.run_marker import read_markers

        _, markers = read_markers(clients, self.group)
        found = self._other(markers)
        if found is not None:
            tag, other = found
            raise StateLockedError(
                f"pipeline {self.name} is being changed by {other.describe()}: its run marker "
                f"(tag {tag}) is on resource group {self.group}, until "
                f"{other.until.strftime('%H:%M:%S UTC')} unless renewed. Wait for it to "
                "finish; a run that died stops counting then (at once if it ran on this "
                "machine), or `batchimage force-unlock --force` removes the marker."
            )

    def claim(
        self,
        clients: Any,
        on_lost: Callable[[str], None],
        say: Callable[[str], None] | None = None,
    ) -> None:
        """Check, then set this run's marker, read it back (StateLockedError if another run
        set its own meanwhile), and keep renewing it until `release`."""
        self._clients, self._on_lost, self._say = clients, on_lost, say
        try:
            self.check(clients)
            self._mark()
            if self._marked:
                self.check(clients)
        except AzureError as err:  # best effort: the run goes on, unmarked, and says so
            self._tell(
                f"could not mark this run on group {self.group} ({err}); runs of this "
                "pipeline from other machines will not see this one"
            )
        self._stop.clear()
        self._thread = threads.start(self._renew_loop, name="batchimage-run-marker")

    def tick(self) -> None:
        """Renew the marker once: read it back first; another run's in its place (or a
        group that lost it) is reported to `on_lost`."""
        from batchimage.azure.run_marker import read_markers

        exists, markers = read_markers(self._clients, self.group)
        if not exists:
            self._marked = False
            return
        found = self._other(markers)
        if found is not None:
            other = found[1]
            if self._on_lost is not None:
                self._on_lost(
                    f"another run of pipeline {self.name} took over: {other.describe()} set "
                    f"its run marker on resource group {self.group}"
                )
            self._stop.set()
            return
        self._mark()

    def release(self) -> None:
        """Stop renewing, remove this run's marker (if still ours), free the name lock."""
        from batchimage.azure.run_marker import read_marker, write_marker

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._marked and self._clients is not None:
            self._marked = False
            tag = self._tag or Marks.Tag.ACTIVE_RUN
            try:
                _, value = read_marker(self._clients, self.group, tag)
                other = parse_marker(value)
                if other is not None and self._mine(other):
                    write_marker(self._clients, self.group, None, tag)
            except BatchImageError as err:
                self._tell(f"could not remove the run marker from group {self.group}: {err}")
        if self._name_lock is not None:
            self._name_lock.release()

    # -- inside --------------------------------------------------------------------------

    def _mark(self) -> None:
        from batchimage.azure.run_marker import read_markers, write_marker

        marker = RunMarker(
            pid=self.holder.pid,
            host=self.holder.host[:63],
            user=self.holder.user[:32],
            command=self.holder.command,
            started_at=self.holder.started_at,
            until=utcnow() + timedelta(seconds=MARKER_TTL_S),
            pipeline=self.name,
        )
        value = marker.model_dump_json()
        while len(value) > MAX_MARKER and marker.user:  # a long host and user: the user gives way
            marker.user = marker.user[:-8]
            value = marker.model_dump_json()
        if self._tag is not None:
            self._marked = write_marker(self._clients, self.group, value, self._tag)
            return
        with _choosing:  # two runs of this process choose, and write, one after the other
            _, markers = read_markers(self._clients, self.group)
            held = parse_marker(markers.get(Marks.Tag.ACTIVE_RUN))
            taken = held is not None and not self._mine(held) and held.counts()
            tag = Marks.Tag.active_run(self.name) if taken else Marks.Tag.ACTIVE_RUN
            self._marked = write_marker(self._clients, self.group, value, tag)
            self._tag = tag if self._marked else None

    def _other(self, markers: dict[str, str]) -> tuple[str, RunMarker] | None:
        """Another live run's marker of this pipeline among the group's `markers`, with its
        tag (one naming no pipeline counts for every pipeline)."""
        for tag in (Marks.Tag.ACTIVE_RUN, Marks.Tag.active_run(self.name)):
            other = parse_marker(markers.get(tag))
            if other is None or self._mine(other) or not other.counts():
                continue
            if other.pipeline in ("", self.name):
                return tag, other
        return None

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_S if self._marked else PENDING_S):
            try:
                self.tick()
            except BatchImageError:
                continue  # a passing failure (or the run stopping): the marker lasts its TTL

    def _mine(self, marker: RunMarker) -> bool:
        return (
            marker.pid == os.getpid()
            and marker.host == self.holder.host[:63]
            and marker.started_at == self.holder.started_at
        )

    def _tell(self, message: str) -> None:
        if self._say is not None:
            self._say(message)


def _holder(said: str) -> LockHolder | None:
    try:
        return LockHolder.model_validate_json(said)
    except (ValidationError, ValueError):
        return None
