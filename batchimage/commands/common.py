"""What every command that talks to Azure shares: its options, and the `Session` they make.

Options (`azure_options`): the spec FILE; `--sandbox` (rehearse against the local Azure,
with the prerequisites the spec names as existing made there first - see
`batchimage.rehearsal`; state kept apart in `<name>.sandbox.json`, never mixed with the
real one); `--state`
(a local state file instead of the spec's backend); `--log-format text|json`; `-v`
(Azure request logging, secrets redacted; `-vv` for more); `--yes` where a command asks.

A `Session` holds the loaded spec, its steps (from `batchimage.steps.pipeline`), the state store,
the event sink and a lazy Azure client factory (made once; `connect()` makes it now).
Heavy imports happen inside functions: importing this module costs only click.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import select
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from batchimage.core.errors import UsageError

if TYPE_CHECKING:
    from batchimage.azure.gate import CallGate
    from batchimage.core.events import EventSink
    from batchimage.engine.coordinator import Engine
    from batchimage.pipeline_guard import PipelineGuard
    from batchimage.state import Journal, StateStore
    from batchimage.steps.base import Step

F = TypeVar("F", bound=Callable[..., Any])

CLOUD_NAMES = {
    "AzurePublicCloud": "public",
    "AzureUSGovernment": "usgov",
    "AzureChinaCloud": "china",
    "sandbox": "sandbox",
}


@dataclass(frozen=True)
class Options:
    """The shared options of one command invocation."""

    spec_file: str
    sandbox: bool = False
    state_path: str | None = None
    log_format: str = "text"
    verbose: int = 0
    yes: bool = False
    spec_files: tuple[str, ...] = ()  # `many` commands: every FILE or folder given

    @property
    def fleet(self) -> bool:
        """Several specs asked for (more than one argument, or a folder): see `fleet`."""
        return len(self.spec_files) > 1 or any(Path(f).is_dir() for f in self.spec_files)


def azure_options(*, yes: bool = False, many: bool = False) -> Callable[[F], F]:
    """Add FILE (`many`: FILE... where a folder means its specs), --sandbox, --state,
    --log-format, -v (and --yes) as one `opts: Options`."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            files = kwargs.pop("spec_files") if many else (kwargs.pop("spec_file"),)
            opts = Options(
                spec_file=files[0],
                spec_files=tuple(files),
                sandbox=kwargs.pop("sandbox"),
                state_path=kwargs.pop("state_path"),
                log_format=kwargs.pop("log_format"),
                verbose=kwargs.pop("verbose"),
                yes=kwargs.pop("yes", False),
            )
            return fn(opts, **kwargs)

        argument = (
            click.argument("spec_files", metavar="FILE...", nargs=-1, required=True)
            if many
            else click.argument("spec_file", metavar="FILE", type=click.Path(dir_okay=False))
        )
        decorators = [
            argument,
            click.option(
                "--sandbox",
                is_flag=True,
                help="Rehearse against the local Azure (sandbox) instead of the spec's cloud; "
                "its state is kept apart (<name>.sandbox.json).",
            ),
            click.option(
                "--state",
                "state_path",
                type=click.Path(dir_okay=False),
                help="Use this local state file instead of the spec's state backend.",
            ),
            click.option(
                "--log-format",
                type=click.Choice(["text", "json"]),
                default="text",
                show_default=True,
                help="Progress on stderr: text (live view on a terminal, lines otherwise) or "
                "json (one event per line).",
            ),
            click.option(
                "-v",
                "--verbose",
                count=True,
                help="Log Azure requests (secrets, SAS signatures and tokens redacted); -vv: more.",
            ),
        ]
        if yes:
            decorators.append(
                click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
            )
        wrapped: Any = wrapper
        for decorator in reversed(decorators):
            wrapped = decorator(wrapped)
        return wrapped

    return decorate


def refresh_option() -> Callable[[F], F]:
    """`--refresh-base` (as `refresh_base`): move a pinned Marketplace `latest` base to the
    newest version for this run."""
    return click.option(
        "--refresh-base",
        "refresh_base",
        is_flag=True,
        help="Resolve a Marketplace 'latest' base afresh for this run instead of using the "
        "version pinned in state: a newer version builds a new image version and rolls it "
        "out to the pools (the spec's follow_latest does it on every run).",
    )


def base_update_of(engine: Engine) -> Any:
    """What the plan's base image step saw of a newer Marketplace version (a
    `BaseUpdate`), or None."""
    from batchimage.steps.resolve_image import ResolveImage

    for node in engine.nodes:
        if isinstance(node.step, ResolveImage):
            return node.step.update
    return None


def format_option(
    help_text: str = "text for people, json for CI.", extra: tuple[str, ...] = ()
) -> Callable[[F], F]:
    """`--format text|json` and any `extra` formats (as `output_format`)."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json", *extra]),
        default="text",
        show_default=True,
        help=help_text,
    )


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
    ) -> Session:
        """Load the spec and set up logging, events, clients and the state store; many
        specs in one command give the `spec` loaded already and their `sink` (which
        replaces the one `--log-format` would make, and has logging set up)."""
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
        factory = functools.cache(
            functools.partial(make_clients, spec, opts.sandbox, say=note_to(notes), hook=gate.hook)
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

    def engine(self, journal: Journal, *, offline: bool = False, refresh: bool = False) -> Engine:
        """An engine over this session's steps (no clients when `offline`); `refresh`:
        resolve a Marketplace `latest` base afresh (`--refresh-base`)."""
        from batchimage.azure.errors import AZURE
        from batchimage.core.retry import RetryPolicy
        from batchimage.engine.coordinator import Engine
        from batchimage.engine.result import new_run_id
        from batchimage.steps.base import RunContext

        ctx = RunContext(
            spec=self.spec,
            pipeline=self.spec.name,
            run_id=new_run_id(),
            events=self.sink,
            state=journal.state,
            clients_factory=None if offline else self.clients_factory,
            refresh_base=refresh,
        )
        retry = RetryPolicy.from_spec(getattr(self.spec, "retry", None))
        engine = Engine(self.steps, ctx, journal, retry=retry, failures=AZURE)
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


def make_store(spec: Any, opts: Options, clients: Callable[[], Any]) -> StateStore:
    """The state store: --state, else the spec's backend; --sandbox keeps a separate one."""
    from batchimage.state.local import LocalStateStore

    if opts.state_path:
        return LocalStateStore(state_option_path(opts.state_path))
    backend = getattr(spec.state, "backend", "local")
    if backend == "local":
        path = Path(spec.state.path)
        return LocalStateStore(sandboxed(path) if opts.sandbox else path)
    return _blob_store(spec, opts, clients)


def state_option_path(value: str) -> Path:
    """The `--state` file as given, checked as the spec's `state.path` is (UsageError, exit
    2): a name with room for the files kept beside it, no link loop, a regular file if any."""
    from batchimage.core import paths
    from batchimage.spec.common import STATE_NAME_ROOM

    try:
        resolved = paths.resolve(value, Path.cwd(), expand_user=False, name_room=STATE_NAME_ROOM)
        problem = paths.kind_problem(resolved)
        if problem:
            raise paths.PathProblem(problem)
    except paths.PathProblem as exc:
        raise UsageError(f"--state {paths.shown(value)}: {exc}") from None
    return Path(value)


def sandboxed(path: Path) -> Path:
    """`x/name.json` -> `x/name.sandbox.json`: a rehearsal's state beside the real one."""
    return path.with_name(f"{path.stem}.sandbox{path.suffix or '.json'}")


def _blob_store(spec: Any, opts: Options, clients: Callable[[], Any]) -> StateStore:
    """The blob backend: the Azure edge finds the spec's storage account and opens the
    blob (`batchimage.azure.state_store`); --sandbox keeps a separate blob."""
    from batchimage.azure.state_store import blob_in_account
    from batchimage.state.blob import BlobStateStore

    cfg = spec.state
    blob = cfg.blob or f"{spec.name}.json"
    if opts.sandbox:
        blob = sandboxed(Path(blob)).as_posix()
    found = blob_in_account(
        clients(),
        account=cfg.storage_account,
        group=cfg.resource_group or spec.resource_group,
        container=cfg.container,
        blob=blob,
        auth=cfg.auth,
    )
    return BlobStateStore(found, lease_s=cfg.lease_s)


def make_clients(
    spec: Any,
    sandbox: bool,
    say: Callable[[str], None] | None = None,
    hook: Callable[[Any], None] | None = None,
) -> Any:
    """The Azure clients for the spec's cloud (or, rehearsing, the sandbox with the spec's
    existing prerequisites made there), with bounded SDK retry; `say` hears what takes
    time meanwhile (starting the local Azure); `hook` sees every request before it leaves
    (a `CallGate`'s)."""
    from batchimage.azure.clients import AzureClients
    from batchimage.azure.errors import SDK_RETRY
    from batchimage.core.redact import register_secret

    kwargs = {**SDK_RETRY, **({"raw_request_hook": hook} if hook is not None else {})}
    if sandbox:
        from batchimage.rehearsal import rehearsal_clients

        return rehearsal_clients(spec, say=say, **kwargs)
    profile = cloud_profile(spec, sandbox, say)
    register_secret(profile.client_secret)
    return AzureClients(profile, spec.subscription, **kwargs)


def cloud_profile(spec: Any, sandbox: bool, say: Callable[[str], None] | None = None) -> Any:
    """The cloud profile for `spec.cloud`, or the sandbox's for --sandbox."""
    from batchimage.azure import cloud

    name = spec.cloud
    if sandbox or name == "sandbox":
        from batchimage.sandbox_client import ensure_running

        return cloud.sandbox(ensure_running(say=say))
    if isinstance(name, str):
        return cloud.resolve(CLOUD_NAMES.get(name, name))
    return cloud.custom(
        str(name.arm_endpoint),
        str(name.authority_host or cloud.PUBLIC.authority_host),
        audience=name.arm_audience,
        ca_bundle=str(name.ca_bundle) if name.ca_bundle else None,
        storage_suffix=name.storage_suffix or "core.windows.net",
        batch_scope=f"{name.batch_resource.rstrip('/')}//.default"
        if name.batch_resource
        else cloud.BATCH_SCOPE,
    )


class _Redacting(logging.Filter):
    """Masks secrets in every log record (message and arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from batchimage.core.redact import redact

        record.msg = redact(record.getMessage())
        record.args = None
        return True


class _NotAzure(logging.Filter):
    """Drops the Azure SDKs' records (shown only with -v)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("azure")


def configure_logging(verbose: int, log_format: str = "text") -> None:
    """-v: Azure request/response lines; -vv: everything at DEBUG. Always redacted.

    Without -v the Azure SDKs' own log records are not shown (Python would print their
    warnings raw, e.g. azure-identity's many-line list of credentials it tried): the
    tool says what failed itself, in its own words. With `--log-format json` every record
    shown (and Python's warnings) is a `log` event: the stream holds only JSON lines.
    """
    from batchimage.ui_lines import JsonLogHandler

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "batchimage", False)]:
        root.removeHandler(old)
    json_lines = log_format == "json"
    handler: logging.Handler
    if verbose <= 0:
        azure = logging.getLogger("azure")
        if not any(isinstance(h, logging.NullHandler) for h in azure.handlers):
            azure.addHandler(logging.NullHandler())
        if not json_lines:
            return
        handler = JsonLogHandler(logging.WARNING)
        handler.addFilter(_NotAzure())
    elif json_lines:
        handler = JsonLogHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    handler.addFilter(_Redacting())
    setattr(handler, "batchimage", True)  # noqa: B010 - replaced on the next call
    root.addHandler(handler)
    if json_lines:
        logging.captureWarnings(True)
    if verbose <= 0:
        return
    root.setLevel(logging.WARNING)
    http = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    http.setLevel(logging.INFO)
    logging.getLogger("batchimage").setLevel(logging.INFO)
    if verbose >= 2:
        root.setLevel(logging.DEBUG)


def terminal_width() -> int | None:
    """The columns of the terminal stdout shows on; None when stdout is not a terminal."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def shown_path(where: str) -> str:
    """A state's place as a person reads it: a local path relative to the current
    directory when it lies inside it; anything else (a blob URL) as it is."""
    if "://" in where:
        return where
    try:
        return str(Path(where).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return where


def confirm(question: str, opts: Options) -> bool:
    """Ask a yes/no question unless --yes; refuse (UsageError) when nobody can answer."""
    if opts.yes:
        return True
    require_terminal(opts, "to confirm")
    while True:
        click.echo(f"{question} [y/N]: ", nl=False, err=True)
        answer = read_line().strip().lower()
        if answer in {"y", "yes", "n", "no", ""}:
            return answer in {"y", "yes"}
        click.echo("Error: invalid input", err=True)


def read_line() -> str:
    """A line typed on stdin (Abort at end of input). It waits in short slices, not in one
    blocking read, so the main thread is awake to handle a signal wherever it landed."""
    while not select.select([sys.stdin], [], [], 0.2)[0]:
        pass
    line = sys.stdin.readline()
    if not line:
        raise click.exceptions.Abort()
    return line


def require_terminal(opts: Options, why: str) -> None:
    """Fail clearly when a question cannot be asked (stdin not a terminal, no --yes)."""
    if not opts.yes and not sys.stdin.isatty():
        raise UsageError(
            f"stdin is not a terminal, so batchimage cannot ask {why}; pass --yes to go ahead"
        )
