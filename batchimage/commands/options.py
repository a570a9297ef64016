"""The options the commands share: the spec FILE(s), `--sandbox`, `--state`, `--log-format`,
`-v`, `--yes` (`azure_options`), `--refresh-base`, `--format`; parsed into `Options`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from batchimage.core.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


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
