"""A `Session`: one loaded spec with its steps (`batchimage.steps.pipeline`), state store,
event sink and a lazy Azure client factory (made once; `connect()` makes it now), and the
engine built over them. Heavy imports happen inside functions."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchimage.commands.logs import configure_logging
from batchimage.commands.options import Options
from batchimage.commands.wiring import make_clients, make_store

if TYPE_CHECKING:
    from batchimage.azure.gate import CallGate
    from batchimage.core.events import EventSink
    from batchimage.core.retry import RetryPolicy
    from batchimage.engine.coordinator import Engine
    from batchimage.pipeline_guard import PipelineGuard
    from batchimage.state import Journal, StateStore
    from batchimage.steps.base import RunContext, Step


def base_update_of(engine: Engine) -> Any:
    """What the plan's base image step saw of a newer Marketplace version (a
    `BaseUpdate`), or None."""
    from batchimage.steps.resolve_image import ResolveImage

    for node in engine.nodes:
        if isinstance(node.step, ResolveImage):
            return node.step.update
    return None


@dataclass
class Session:
    """A loaded spec with its steps, state store, events and (lazy) Azure clients."""

    spec: Any
    steps: list[Step[Any]]
    store: StateStore
    sink: EventSink
    clients_factory: Callable[[], Any] | None = None
    opts: Options = field(default_factory=lambda: Options(spec_file=""))
    gate: CallGate = field(default_factory=lambda: _new_gate())
    guard: PipelineGuard | None = None
    lost: Callable[[str], None] = lambda message: None

    @classmethod
    def load(
        cls,
        opts: Options,
        *,
        events: bool = True,
        sink: EventSink | None = None,
        spec: Any = None,
        snapshot: bool = False,
        clients: Callable[[], Any] | None = None,
    ) -> Session:
        """Load the spec and set up logging, events, clients and the state store; many
        specs in one command give the `spec` loaded already and their `sink` (which
        replaces the one `--log-format` would make, and has logging set up). `snapshot`:
        clients that read each URL once (`plan`); `clients`: a factory of clients to use
        instead (one that specs of a command share)."""
        from batchimage.spec import load_spec
        from batchimage.steps.pipeline import build_steps
        from batchimage.ui import JsonSink, NullSink, make_sink

        if spec is None:
            spec = load_spec(opts.spec_file)
        if sink is None:
            configure_logging(opts.verbose, opts.log_format)
        notes: EventSink
        if sink is not None:
            notes = sink
        elif events:
            sink = notes = make_sink(opts.log_format)
        else:
            sink = JsonSink(sys.stderr) if opts.log_format == "json" else NullSink()
            # What takes seconds before any step (starting the local Azure) is said even by
            # a command whose steps stay quiet.
            notes = sink if opts.log_format == "json" else make_sink(opts.log_format)
        gate = _new_gate()
        factory = clients or functools.cache(
            functools.partial(
                make_clients,
                spec,
                opts.sandbox,
                say=note_to(notes),
                hook=gate.hook,
                snapshot=snapshot and not opts.sandbox,
            )
        )
        session = cls(
            spec=spec,
            steps=build_steps(spec),
            store=make_store(spec, opts, factory),
            sink=sink,
            clients_factory=factory,
            opts=opts,
            gate=gate,
        )
        return session

    @contextlib.contextmanager
    def journal(self, *, lock: str | None) -> Iterator[Journal]:
        """The state, locked for `lock` (a command name) or read-only when None; a locked
        journal gets the pipeline's guard (`batchimage.pipeline_guard`), taken by
        `check_pipeline` and released with the journal."""
        from batchimage.pipeline_guard import PipelineGuard
        from batchimage.state import Journal, LockHolder

        holder = LockHolder(command=lock, state=self.store.where) if lock else None
        journal = Journal.open(
            self.store, self.spec.name, spec_hash=spec_hash(self.spec), lock=holder
        )
        try:
            if holder is not None and self.clients_factory is not None:
                self.guard = PipelineGuard(self.spec, holder)
            yield journal
        finally:
            guard, self.guard = self.guard, None
            try:
                if guard is not None:
                    guard.release()
            finally:
                journal.close()

    def check_pipeline(self) -> None:
        """Take the pipeline's lock on this machine, and stop (StateLockedError) if another
        run's marker stands on its group: before the plan, so before any write. Azure
        failing to answer is left to the plan's preflight to report (the marker is read
        again before the first write)."""
        from batchimage.core.errors import AzureError

        if self.guard is not None and self.clients_factory is not None:
            clients = self.clients_factory()
            self.guard.lock_here(clients)
            with contextlib.suppress(AzureError):
                self.guard.check(clients)

    def claim_pipeline(self) -> None:
        """Mark this run on the pipeline's group before its first write (see `journal`)."""
        if self.guard is not None and self.clients_factory is not None:
            self.guard.claim(self.clients_factory(), self.lost, say=note_to(self.sink))

    def connect(self) -> None:
        """Reach the spec's cloud now (a `cloud: sandbox` spec starts or joins its sandbox):
        a cloud that cannot be reached stops the command with its own message, before any
        step or check runs, never as the failure of one."""
        if self.clients_factory is not None:
            self.clients_factory()

    def context(
        self, journal: Journal, *, offline: bool = False, refresh: bool = False
    ) -> RunContext:
        """A new run's context over `journal`'s state (no clients when `offline`);
        `refresh`: resolve a Marketplace `latest` base afresh (`--refresh-base`)."""
        from batchimage.engine.result import new_run_id
        from batchimage.steps.base import RunContext

        return RunContext(
            pipeline=self.spec.name,
            run_id=new_run_id(),
            events=self.sink,
            state=journal.state,
            clients_factory=None if offline else self.clients_factory,
            refresh_base=refresh,
            delete_timeout_s=getattr(getattr(self.spec, "timeouts", None), "delete_s", None),
        )

    def retry_policy(self) -> RetryPolicy:
        """How the spec's `retry` says to retry a transient Azure failure."""
        from batchimage.core.retry import RetryPolicy

        return RetryPolicy.from_spec(getattr(self.spec, "retry", None))

    def engine(self, journal: Journal, *, offline: bool = False, refresh: bool = False) -> Engine:
        """An engine over this session's steps, with a new run's `context`."""
        from batchimage.azure.errors import AZURE
        from batchimage.engine.coordinator import Engine

        ctx = self.context(journal, offline=offline, refresh=refresh)
        engine = Engine(self.steps, ctx, journal, retry=self.retry_policy(), failures=AZURE)
        if journal.store is not None:
            self.lost = functools.partial(_lost, engine, self.gate, journal.store.where)
            journal.store.on_lost(self.lost)
        return engine

    def close(self) -> None:
        """Stop the progress display."""
        self.sink.close()


def make_sink_for(log_format: str, *, fleet: bool = False, events: bool = True) -> EventSink:
    """The sink for `--log-format`; `fleet`: the one all specs of a command share (on a
    terminal, a live table with a row per spec; `events` False: notes only, as lines)."""
    from batchimage.ui import make_sink

    if fleet and events and log_format != "json" and sys.stderr.isatty():
        from batchimage.ui_fleet import FleetLiveSink

        return FleetLiveSink(sys.stderr)
    return make_sink(log_format)


def _new_gate() -> CallGate:
    from batchimage.azure.gate import CallGate

    return CallGate()


def _lost(engine: Engine, gate: CallGate, where: str, message: str) -> None:
    """The run lost its state lock: end it with LockLostError, then refuse every Azure call."""
    from batchimage.core.errors import LockLostError

    engine.flag.abort(
        LockLostError(
            f"{message}. This run stopped calling Azure at once; what it had done is saved "
            f"in {where} (run apply again to resume once the other run is over)."
        )
    )
    gate.close(message)


def note_to(sink: EventSink) -> Callable[[str], None]:
    """A `say(text)` that shows `text` on `sink` as a note of the run (no step)."""
    from batchimage.core.events import Event

    def say(text: str) -> None:
        sink.emit(Event("run_note", message=text))

    return say


def spec_hash(spec: Any) -> str | None:
    """The hash recorded in state for the spec that ran (its file's SHA-256)."""
    return getattr(spec, "source_sha256", None) or None
