"""`batchimage destroy FILE`: delete what this pipeline created, newest first; asks first."""

from __future__ import annotations

import click

from batchimage.commands.fleet import fail_fast_option, parallel_option
from batchimage.commands.options import Options, azure_options
from batchimage.commands.session import Session
from batchimage.commands.terminal import confirm, require_terminal
from batchimage.ui_lines import say


@click.command("destroy")
@azure_options(yes=True, many=True)
@parallel_option()
@fail_fast_option()
def command(opts: Options, parallel: int, fail_fast: bool) -> int:
    """Delete every resource the state says each FILE's pipeline created, and nothing else.

    Build resources the state does not list (it was lost, or a run stopped) are found by
    the pipeline's tags and deleted too. Resources that existed before the pipeline (an
    existing gallery, subnet, Batch account) are never deleted, nor a gallery that still
    holds other pipelines' image definitions (said so). Asks first (--yes to skip;
    required without a terminal). A folder stands for its specs; several run --parallel
    at a time.
    """
    if opts.fleet:
        from batchimage.commands.many import destroy_many

        return destroy_many(opts, parallel, fail_fast)
    require_terminal(opts, "to confirm the deletion")
    session = Session.load(opts)
    try:
        return run(session)
    finally:
        session.close()


def run(session: Session) -> int:
    """Lock the state, find what the pipeline's tags show that the state does not list, list
    what will go (what still exists), confirm, delete in reverse order; what is kept on
    purpose (a gallery others use) is said, and destroy succeeds."""
    from batchimage.engine.signals import handle_signals

    name = session.spec.name
    with session.journal(lock="destroy") as journal:
        session.connect()
        session.check_pipeline()
        engine = session.engine(journal)
        found = engine.adopt_leftovers()
        recorded = engine.destroy_plan()
        if not recorded:
            click.echo(
                f"nothing to destroy: neither the state nor Azure (by the pipeline's tags) shows "
                f"resources created by {name}"
            )
            return 0
        if found:
            click.echo(
                f"found {found} resource(s) of {name} by their tags that the state did not list"
            )
        doomed = engine.destroy_plan(observe=True)
        gone = len(recorded) - len(doomed)
        gone_note = (
            f"{gone} more the state records are gone already (deleted by cleanup or outside "
            "batchimage)"
        )
        if doomed:
            click.echo(f"destroy {name} will delete {len(doomed)} resource(s):")
            for key, ref in doomed:
                click.echo(f"  - {ref.kind} {ref.id} (step {key})")
            if gone:
                click.echo(f"  ({gone_note})")
            if not confirm("Delete these resources?", session.opts):
                say("destroy cancelled; nothing was deleted")
                return 1
            session.claim_pipeline()
        else:
            click.echo(f"nothing to destroy: the {gone} resource(s) the state records are gone")
        with handle_signals(engine.flag):
            result = engine.destroy()  # gone ones are only marked so in the state
    if not doomed:
        return 0
    removed = sum(1 for change in result.changes if change.action == "delete")
    click.echo(f"destroy complete: {removed} step(s) removed (run {result.run_id})")
    for note in result.kept:
        click.echo(f"  kept {note}")
    return 0
