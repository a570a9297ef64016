"""What a command asks of the terminal: its width, a yes/no question (`--yes` skips it),
and paths shown relative to where the person stands."""

from __future__ import annotations

import select
import shutil
import sys
from pathlib import Path

import click

from batchimage.commands.options import Options
from batchimage.core.errors import UsageError


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
