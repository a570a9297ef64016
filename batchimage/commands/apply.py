"""`batchimage apply FILE`: show the plan, ask, then bring Azure to the spec; resumable."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from batchimage.commands.fleet import fail_fast_option, parallel_option
from batchimage.commands.options import Options, azure_options, refresh_option
from batchimage.commands.session import Session
from batchimage.commands.terminal import confirm, require_terminal, shown_path, terminal_width
from batchimage.ui_lines import say

if TYPE_CHECKING:
    from batchimage.engine.coordinator import Engine
    from batchimage.engine.result import Change


@click.command("apply")
@azure_options(yes=True, many=True)
@click.option("--target", metavar="STEP", help="Apply only this step and its dependencies.")
@refresh_option()
@parallel_option()
@fail_fast_option()
def command(
    opts: Options, target: str | None, refresh_base: bool, parallel: int, fail_fast: bool
) -> int:
    """Build the image and pools each FILE describes; safe to re-run, resumes after any failure.

    Shows the plan and asks before changing anything (--yes to skip; required when stdin
    is not a terminal). Ctrl-C stops cleanly (exit 130); run apply again to resume.
    --refresh-base moves a pinned Marketplace base to its newest version. A folder stands
    for its specs (*.yaml, *.yml); several specs run --parallel at a time, each with its own
    state and lock, and the exit code is the worst of theirs.
    """
    if opts.fleet:
        from batchimage.commands.many import apply_many

        return apply_many(opts, target, refresh_base, parallel, fail_fast)
    require_terminal(opts, "to confirm the plan")
    session = Session.load(opts)
    try:
        return run(session, target=target, refresh=refresh_base)
    finally:
        session.close()


def run(session: Session, *, target: str | None = None, refresh: bool = False) -> int:
    """Lock the state, plan, confirm, apply; raises BatchImageError on failure."""
    from batchimage.commands.plan import base_notes, has_changes, render_plan
    from batchimage.core.events import format_duration
    from batchimage.engine.signals import handle_signals

    with session.journal(lock="apply") as journal:
        session.connect()
        session.check_pipeline()
        engine = session.engine(journal, refresh=refresh)
        changes = quiet_plan(engine, session, target)
        where = shown_path(journal.store.where) if journal.store else ""
        notes = base_notes(engine)
        click.echo(
            render_plan(session.spec.name, where, changes, width=terminal_width(), notes=notes)
        )
        if has_changes(changes) and not confirm("Apply these changes?", session.opts):
            say("apply cancelled; nothing was changed")
            return 1
        if has_changes(changes):
            session.claim_pipeline()
        fresh = session.opts.yes or not has_changes(changes)  # nobody was asked: no wait
        with handle_signals(engine.flag):
            result = engine.apply(target=target, reuse_plan=fresh)
    took = format_duration(result.duration_s)
    click.echo(f"apply complete in {took}: {result.summary()} (run {result.run_id})")
    return 0


def quiet_plan(engine: Engine, session: Session, target: str | None) -> list[Change]:
    """Plan before applying; its text is printed, so text progress stays quiet meanwhile."""
    from batchimage.ui import NullSink

    if session.opts.log_format == "json":
        return engine.plan(target=target, command="apply")
    events, engine.ctx.events = engine.ctx.events, NullSink()
    try:
        return engine.plan(target=target, command="apply")
    finally:
        engine.ctx.events = events
