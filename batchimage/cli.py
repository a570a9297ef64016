"""The `batchimage` command line: a click group whose commands load on first use.

Each command lives in `batchimage/commands/<name>.py` as a click command named `command`;
heavy imports (the Azure SDKs) happen inside the command body, so `--help` and `validate`
stay fast. Every expected failure is a `BatchImageError`: printed as one message, exited
with its `exit_code` (see `batchimage.errors`), never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from batchimage import __version__
from batchimage.errors import EXIT_INTERRUPTED, BatchImageError

COMMANDS: dict[str, str] = {
    "validate": "Check spec files and report every problem with file:line:column.",
    "schema": "Write or print the JSON Schema of the spec language.",
    "plan": "Show what apply would change, and why.",
    "apply": "Build the image and pools the spec describes; resumes after any failure.",
    "preflight": "Run the preflight checks alone.",
    "destroy": "Delete what this pipeline created, newest first.",
    "status": "Show each step's state from the state file.",
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
    130 interrupted (progress saved, run `apply` again to resume).
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

    A command returns its exit code as an int (e.g. `plan` returns 2 when changes are pending).
    """
    try:
        rc = group.main(args=argv, prog_name="batchimage", standalone_mode=False)
    except BatchImageError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(rc if isinstance(rc, int) else 0)
