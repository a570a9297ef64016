"""`batchimage destroy FILE`: delete what this pipeline created, newest first; asks first."""

from __future__ import annotations

import click

from batchimage.commands.common import Options, Session, azure_options, confirm, require_terminal


@click.command("destroy")
@azure_options(yes=True)
def command(opts: Options) -> int:
    """Delete every resource the state says this pipeline created, and nothing else.

    Build resources the state does not list (it was lost, or a run stopped) are found by
    the pipeline's tags and deleted too. Resources that existed before the pipeline (an
    existing gallery, subnet, Batch account) are never deleted. Asks first (--yes to skip;
    required without a terminal).
    """
    require_terminal(opts, "to confirm the deletion")
    session = Session.load(opts)
    try:
        return run(session)
    finally:
        session.close()


def run(session: Session) -> int:
    """Lock the state, find leftovers, list what will go, confirm, delete in reverse order."""
    from batchimage.engine import handle_signals

    with session.journal(lock="destroy") as journal:
        session.connect()
        engine = session.engine(journal)
        found = engine.adopt_leftovers()
        doomed = engine.destroy_plan()
        if not doomed:
            click.echo(
                f"nothing to destroy: neither the state nor Azure (by the pipeline's tags) shows "
                f"resources created by {session.spec.name}"
            )
            return 0
        if found:
            click.echo(
                f"found {found} resource(s) of {session.spec.name} by their tags that the state "
                "did not list"
            )
        click.echo(f"destroy {session.spec.name} will delete {len(doomed)} resource(s):")
        for key, ref in doomed:
            click.echo(f"  - {ref.kind} {ref.id} (step {key})")
        if not confirm("Delete these resources?", session.opts):
            click.echo("destroy cancelled; nothing was deleted", err=True)
            return 1
        with handle_signals(engine.flag):
            result = engine.destroy()
    click.echo(f"destroy complete: {len(result.changes)} step(s) removed (run {result.run_id})")
    return 0
