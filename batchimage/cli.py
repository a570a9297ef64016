"""The `batchimage` command line: a click group whose commands load on first use.

Each command lives in `batchimage/commands/<name>.py` as a click command named `command`;
heavy imports (the Azure SDKs) happen inside the command body, so `--help` and `validate`
stay fast. Every expected failure is a `BatchImageError`: printed as one message, exited
with its `exit_code` (see `batchimage.core.errors`), never a traceback.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
from typing import Any, NoReturn

import click

from batchimage import __version__
from batchimage.core.errors import EXIT_INTERRUPTED, BatchImageError

COMMANDS: dict[str, str] = {
    "validate": "Check spec files and report every problem with file:line:column.",
    "schema": "Write or print the JSON Schema of the spec language.",
    "plan": "Show what apply would change, and why.",
    "apply": "Build the image and pools the spec describes; resumes after any failure.",
    "preflight": "Run the preflight checks alone.",
    "destroy": "Delete what this pipeline created, newest first.",
    "status": "Show each step's state, and whether a newer base image is out.",
    "output": "Print the pipeline's outputs (image version id, VHD URL, pool ids).",
    "force-unlock": "Release a state lock left by a run that is gone.",
    "sandbox": "Run and manage the local Azure (sandbox).",
}


class LazyGroup(click.Group):
    """A click group that imports `batchimage.commands.<name>` only when the command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if ctx.resilient_parsing or _only_listing(ctx):
            return click.Command(cmd_name, help=COMMANDS[cmd_name], short_help=COMMANDS[cmd_name])
        module = importlib.import_module(f"batchimage.commands.{cmd_name.replace('-', '_')}")
        command: click.Command = module.command
        return command


def _only_listing(ctx: click.Context) -> bool:
    """True while click renders the group's own --help (it asks every command for help)."""
    return bool(ctx.meta.get("batchimage.listing"))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchimage")
def group() -> None:
    """batchimage: one YAML spec to a ready Azure Batch pool on a custom VM image.

    Exit codes: 0 success; 1 failed (Azure, state, preflight, step); 2 invalid input
    (spec, usage; for `plan`: changes pending); 3 state or pipeline in use by another run;
    130 interrupted by Ctrl-C or SIGTERM at any moment (the message says what was saved;
    run `apply` again to resume). With several specs: the worst of theirs (130, 1, 3, 2, 0).
    """


def _format_commands(self: click.Group, ctx: click.Context, formatter: Any) -> None:
    ctx.meta["batchimage.listing"] = True
    try:
        click.Group.format_commands(self, ctx, formatter)
    finally:
        ctx.meta.pop("batchimage.listing", None)


LazyGroup.format_commands = _format_commands  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with the documented code; expected failures print no traceback.

    A command returns its exit code as an int (e.g. `plan` returns 2 when changes are
    pending). Run as the program (`argv` None), SIGINT and SIGTERM never end it silently:
    see `_catch_signals`.
    """
    from batchimage import ui_lines

    program = argv is None
    if program:
        _catch_signals()
        collect_rarely()
    ui_lines.use_json(ui_lines.json_requested(sys.argv[1:] if argv is None else argv))
    missing = missing_posix()
    if missing:
        ui_lines.error(
            f"batchimage runs on Linux and macOS; on Windows, run it inside WSL "
            f"(https://learn.microsoft.com/windows/wsl/install). This Python has no {missing}, "
            "which batchimage needs (it locks the state file with flock and keeps Ctrl-C on "
            "the main thread with signal masks).",
            1,
        )
        _exit(1, program)
    try:
        rc = group.main(args=argv, prog_name="batchimage", standalone_mode=False)
    except BatchImageError as err:
        ui_lines.error(str(err), err.exit_code)
        _exit(err.exit_code, program)
    except click.exceptions.Abort:
        ui_lines.error(_stopped(), EXIT_INTERRUPTED, prefix="")
        _exit(EXIT_INTERRUPTED, program)
    except click.ClickException as exc:
        if ui_lines.json_lines():
            ui_lines.error(exc.format_message(), exc.exit_code)
        else:
            exc.show()
        _exit(exc.exit_code, program)
    except KeyboardInterrupt:
        ui_lines.error(_stopped(), EXIT_INTERRUPTED, prefix="")
        _exit(EXIT_INTERRUPTED, program)
    _exit(rc if isinstance(rc, int) else 0, program)


def missing_posix() -> str:
    """What this Python lacks of the POSIX facilities batchimage needs ("" when none)."""
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return "fcntl"
    return "" if hasattr(signal, "pthread_sigmask") else "signal.pthread_sigmask"


def collect_rarely() -> None:
    """The program's garbage-collector thresholds. The SDK's models make many objects and
    few cycles: collecting the youngest generation every 700 allocations (the default) cost
    a no-op `plan` of 20 specs 7 % of its CPU; every 50,000 keeps what the cycles hold small
    all the same."""
    gc.set_threshold(50_000, 20, 20)


_caught: list[str] = []  # the signals received, by name


def _catch_signals() -> None:
    """SIGTERM is handled as SIGINT is: it raises KeyboardInterrupt wherever the command
    is (a run's engine takes both over while it applies, to stop gracefully), so it
    stops with a message and exit 130 instead of dying silently with 143."""

    def interrupt(signum: int, _frame: object) -> None:
        _caught.append(signal.Signals(signum).name)
        raise KeyboardInterrupt(_caught[-1])

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)


def _stopped() -> str:
    """What an interruption outside a run's steps says (a run says `progress saved`)."""
    name = _caught[-1] if _caught else "SIGINT"
    return f"interrupted by {name}; nothing was being changed, so nothing is left half done"


def _exit(code: int, program: bool) -> NoReturn:
    """Exit with `code`. The final message is out: a signal from now on (a second Ctrl-C
    or SIGTERM while the process winds down) ends it at once with the same code."""
    if program:

        def now(_signum: int, _frame: object) -> None:
            sys.stderr.flush()
            os._exit(code)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, now)
    sys.exit(code)
