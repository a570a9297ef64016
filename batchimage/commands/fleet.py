"""Many specs in one command: the FILEs and folders given, each spec run on a thread of a
bounded pool, and what every spec came to.

    files = expand(("specs/", "extra.yaml"))       # a folder: its *.yaml / *.yml, sorted
    fleet = Fleet(opts, parallel=4, fail_fast=False)
    outcomes = fleet.run(files, work)              # work(spec: Spec) -> Outcome
    click.echo(summary_table(outcomes)); return worst(outcomes)

Each spec keeps its own state and lock (a `Session` of its own); they share the process,
so they share its Azure request budget (`batchimage.azure.throttle`) and the locks on
shared resources (`batchimage.azure.shared`). Their events go to one sink, each carrying
the spec's name (`SpecSink`). A spec that fails does not stop the others; with
`fail_fast`, no new spec starts after a failure and running ones are asked to stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batchimage.core.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_LOCKED,
    EXIT_OK,
    BatchImageError,
    UsageError,
)

if TYPE_CHECKING:
    from batchimage.commands.options import Options
    from batchimage.commands.session import Session
    from batchimage.core.events import Event, EventSink
    from batchimage.engine import StopFlag
    from batchimage.engine.coordinator import Engine

SPEC_SUFFIXES = (".yaml", ".yml")
DEFAULT_PARALLEL = 4
# Exit codes from least to most severe: the command exits with the worst of its specs'.
SEVERITY = (EXIT_OK, EXIT_INVALID, EXIT_LOCKED, EXIT_FAILED, EXIT_INTERRUPTED)


def expand(args: tuple[str, ...]) -> list[str]:
    """The spec files `args` name, in order: a folder stands for its *.yaml and *.yml files
    (not its subfolders), sorted by name; a file is taken as given (loading it says what is
    wrong with it); one named twice is taken once."""
    files: list[str] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not found:
                raise UsageError(f"{arg}: the folder holds no spec (*.yaml, *.yml)")
            files += [str(p) for p in found]
        else:
            files.append(arg)
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = Path(file).resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique


def parallel_option() -> Callable[[Any], Any]:
    """`--parallel N` (as `parallel`): how many specs run at once."""
    return click.option(
        "--parallel",
        type=click.IntRange(min=1),
        default=DEFAULT_PARALLEL,
        show_default=True,
        help="With several specs: how many run at once (they share one Azure request budget).",
    )


def fail_fast_option() -> Callable[[Any], Any]:
    """`--fail-fast` (as `fail_fast`)."""
    return click.option(
        "--fail-fast",
        "fail_fast",
        is_flag=True,
        help="With several specs: after one fails, start no other and ask running ones to "
        "stop cleanly (their progress is saved).",
    )


@dataclass
class Outcome:
    """What one spec came to: `result` in words (ok, changes, no changes, failed, invalid,
    in use, interrupted, stopped, not started), its exit code, time and what changed."""

    spec: str
    name: str
    result: str
    exit_code: int
    duration_s: float = 0.0
    changed: str = ""
    message: str = ""  # the first line of the error (the table's)
    error: str = ""  # the whole error: the checks that failed, the next action

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def worst(outcomes: list[Outcome]) -> int:
    """The most severe exit code of `outcomes` in `SEVERITY`'s order (0 when empty)."""
    codes = [o.exit_code for o in outcomes]
    rank = {code: i for i, code in enumerate(SEVERITY)}
    return max(codes, key=lambda c: rank.get(c, rank[EXIT_FAILED]), default=EXIT_OK)


@dataclass
class Spec:
    """One spec of the fleet as a worker gets it: its file, loaded spec (None if it did not
    load), its sink, and the fleet (to register what can be stopped)."""

    file: str
    spec: Any
    sink: SpecSink
    fleet: Fleet

    @property
    def name(self) -> str:
        return str(self.spec.name)

    def session(self, *, events: bool = True, snapshot: bool = False) -> Session:
        """This spec's own session (state, lock, clients), its events on the fleet's sink
        (`events` False: only its notes, as a single `plan` or `status` shows them);
        `snapshot` (a command that writes nothing): clients shared with the fleet's other
        specs of the same cloud and subscription, reading each URL once for all of them."""
        from batchimage.commands.session import Session

        opts = dataclasses.replace(self.fleet.opts, spec_file=self.file, spec_files=(self.file,))
        every = events or opts.log_format == "json"  # as a single command's JSON stream
        sink = self.sink if every else self.sink.notes()
        shared = self.fleet.shared_clients(self.spec, sink) if snapshot else None
        return Session.load(opts, spec=self.spec, sink=sink, snapshot=snapshot, clients=shared)

    @contextlib.contextmanager
    def locked(self, command: str, *, refresh: bool = False) -> Iterator[tuple[Session, Engine]]:
        """This spec's session with its state locked for `command`, connected, its
        pipeline checked, and an engine the fleet can stop; all closed after."""
        session = self.session()
        try:
            with session.journal(lock=command) as journal:
                self.connect(session)
                session.check_pipeline()
                engine = session.engine(journal, refresh=refresh)
                self.watch(engine.flag)
                yield session, engine
        finally:
            session.close()

    def connect(self, session: Session) -> None:
        """`session.connect()`, one spec at a time (starting or joining the local Azure
        once, not from many threads at the same moment)."""
        with self.fleet.connecting:
            session.connect()

    def watch(self, flag: StopFlag) -> None:
        """Let the fleet stop this spec's engine (fail-fast, Ctrl-C)."""
        self.fleet.watch(flag)


class SpecSink:
    """The sink of one spec among many: every event it passes on carries the spec's name
    (`data["spec"]`); it keeps the counts of the spec's last `run_finished`."""

    def __init__(self, base: EventSink, name: str, *, quiet: bool = False) -> None:
        self.base = base
        self.name = name
        self.quiet = quiet
        self.finished: dict[str, Any] = {}

    def emit(self, event: Event) -> None:
        if event.kind == "run_finished":
            self.finished = dict(event.data)
        if not self.quiet or event.kind == "run_note":
            self.base.emit(dataclasses.replace(event, data={**event.data, "spec": self.name}))

    def notes(self) -> SpecSink:
        """A sink for the same spec that passes on only its notes (a read-only command)."""
        return SpecSink(self.base, self.name, quiet=True)

    def close(self) -> None:
        """The shared sink is closed by the fleet, once."""


@dataclass
class Fleet:
    """Runs one worker per spec, `parallel` at a time, and collects their outcomes."""

    opts: Options
    parallel: int = DEFAULT_PARALLEL
    fail_fast: bool = False
    events: bool = True
    connecting: threading.Lock = field(default_factory=threading.Lock)
    stopping: str = ""  # why no new spec starts ("" while they may)
    _shared: dict[tuple[str, str], Callable[[], Any]] = field(default_factory=dict)
    _flags: list[StopFlag] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.opts.state_path:
            raise UsageError("--state names one state file: give one spec with it")

    def shared_clients(self, spec: Any, sink: EventSink) -> Callable[[], Any] | None:
        """One snapshot-reading client factory per cloud and subscription, for the specs of
        a command that writes nothing (None when rehearsing: each spec's own sandbox
        prerequisites are made by its clients)."""
        if self.opts.sandbox:
            return None
        from batchimage.commands.session import note_to
        from batchimage.commands.wiring import make_clients

        key = (repr(spec.cloud), str(spec.subscription or ""))
        with self._lock:
            if key not in self._shared:
                self._shared[key] = functools.cache(
                    functools.partial(make_clients, spec, False, say=note_to(sink), snapshot=True)
                )
            return self._shared[key]

    def watch(self, flag: StopFlag) -> None:
        """Register a running engine's stop flag (asked at once when the fleet stops)."""
        with self._lock:
            self._flags.append(flag)
            if self.stopping:
                flag.request(signal.SIGTERM if self.stopping == "fail-fast" else signal.SIGINT)

    def stop(self, why: str, signum: int = signal.SIGINT) -> None:
        """Start no new spec, and ask every running one to stop (a second call: at once)."""
        with self._lock:
            self.stopping = self.stopping or why
            flags = list(self._flags)
        for flag in flags:
            flag.request(signum)
            if why == "fail-fast":
                flag.signal_name = "--fail-fast"

    def run(self, files: list[str], work: Callable[[Spec], Outcome]) -> list[Outcome]:
        """Load each spec, run `work` on it (at most `parallel` at once); the outcomes in
        the order of `files`. A spec that does not load is `invalid`; one that fails
        leaves the others running."""
        from batchimage.commands.logs import configure_logging
        from batchimage.commands.session import make_sink_for
        from batchimage.spec import load_spec

        configure_logging(self.opts.verbose, self.opts.log_format)
        base = make_sink_for(self.opts.log_format, fleet=True, events=self.events)
        outcomes: dict[int, Outcome] = {}
        specs: dict[int, Spec] = {}
        for i, file in enumerate(files):
            try:
                loaded = load_spec(file)
            except BatchImageError as err:
                outcomes[i] = failed(file, "", err, 0.0)
                continue
            specs[i] = Spec(file, loaded, SpecSink(base, str(loaded.name)), self)
        if self.fail_fast and any(_failure(o) for o in outcomes.values()):
            self.stopping = "fail-fast"
        add = getattr(base, "add", None)
        if add is not None:
            for i in sorted(specs):
                add(specs[i].name, specs[i].file)
        try:
            with self._signals(), ThreadPoolExecutor(self.parallel) as pool:
                running: dict[Future[Outcome], int] = {
                    pool.submit(self._one, specs[i], work): i for i in sorted(specs)
                }
                while running:
                    done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = running.pop(future)
                        outcomes[i] = future.result()
                        finish = getattr(base, "finish", None)
                        if finish is not None:
                            finish(outcomes[i])
        finally:
            base.close()
        return [outcomes[i] for i in range(len(files))]

    def _one(self, spec: Spec, work: Callable[[Spec], Outcome]) -> Outcome:
        if self.stopping:
            return Outcome(spec.file, spec.name, "not started", EXIT_OK, message=self.stopping)
        started = time.monotonic()
        try:
            outcome = work(spec)
        except BatchImageError as err:
            outcome = failed(spec.file, spec.name, err, time.monotonic() - started, spec.sink)
            if self.stopping == "fail-fast" and outcome.exit_code == EXIT_INTERRUPTED:
                outcome.result, outcome.exit_code = "stopped", EXIT_FAILED
                outcome.message = "stopped by --fail-fast (progress saved)"
        except Exception as exc:  # a bug in one spec's run must not hide the others'
            outcome = Outcome(spec.file, spec.name, "failed", EXIT_FAILED, message=repr(exc))
        outcome.duration_s = round(time.monotonic() - started, 3)
        if self.fail_fast and _failure(outcome):  # before this thread takes the next spec
            self.stop("fail-fast", signal.SIGTERM)
        return outcome

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM ask every running spec to stop (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        sigs = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.getsignal(sig) for sig in sigs}
        for sig in sigs:
            signal.signal(sig, lambda signum, _frame: self.stop("interrupted", signum))
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _failure(outcome: Outcome) -> bool:
    """Whether `outcome` is a failure `--fail-fast` stops for (not changes pending)."""
    return outcome.exit_code != EXIT_OK and outcome.result not in ("changes", "stopped")


RESULTS = {
    EXIT_INVALID: "invalid",
    EXIT_LOCKED: "in use",
    EXIT_INTERRUPTED: "interrupted",
}


def failed(
    file: str, name: str, err: BatchImageError, took: float, sink: SpecSink | None = None
) -> Outcome:
    """The outcome of a spec whose run raised `err` (its counts so far when it ran)."""
    changed = _counts(sink) if sink is not None else ""
    whole = str(err) or type(err).__name__
    result = RESULTS.get(err.exit_code, "failed")
    return Outcome(file, name, result, err.exit_code, took, changed, whole.splitlines()[0], whole)


def _counts(sink: SpecSink) -> str:
    """What the spec's last run changed, from its `run_finished` counts."""
    counts: dict[str, int] = sink.finished.get("counts") or {}
    return ", ".join(f"{n} {word}" for word, n in counts.items())


def summary_table(outcomes: list[Outcome]) -> str:
    """One row per spec (spec, result, time, what changed or why it failed), a line of
    totals, then the whole error of each spec whose error is longer than its row's line."""
    from batchimage.core.events import format_duration

    rows = [("spec", "result", "time", "changes")]
    for o in outcomes:
        took = format_duration(o.duration_s) if o.result != "not started" else "-"
        why = o.message if o.result not in ("ok", "changes", "no changes") else ""
        detail = "; ".join(x for x in (o.changed, why) if x) or "-"
        rows.append((o.name or o.spec, o.result, took, detail))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)), r[3]]).rstrip()
        for r in rows
    ]
    tally: dict[str, int] = {}
    for o in outcomes:
        tally[o.result] = tally.get(o.result, 0) + 1
    lines.append(f"{len(outcomes)} spec(s): " + ", ".join(f"{n} {r}" for r, n in tally.items()))
    long = [o for o in outcomes if "\n" in o.error]  # failed checks, the next action
    lines.extend(["", *(f"{o.name or o.spec}: {o.error}" for o in long)] if long else [])
    return "\n".join(lines)


def report(opts: Options, outcomes: list[Outcome], *, stderr: bool = False) -> int:
    """Print the summary table (on stdout, or `stderr`; under `--log-format json` the
    stderr stream gets a `specs_finished` event with every outcome instead) and return
    the command's exit code, the worst of the specs'."""
    from batchimage.ui_lines import say

    code = worst(outcomes)
    if opts.log_format == "json":
        specs = [o.to_json() for o in outcomes]
        say("every spec is over", event="specs_finished", specs=specs, exit_code=code)
    if not (stderr and opts.log_format == "json"):
        click.echo(summary_table(outcomes), err=stderr)
    return code
