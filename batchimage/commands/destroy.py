"""`batchimage destroy FILE`: delete what this pipeline created, newest first; asks first."""

from __future__ import annotations

import click

from batchimage.commands.common import Options, Session, azure_options, confirm, require_terminal
from batchimage.ui_lines import say


@click.command("destroy")
@azure_options(yes=True)
def command(opts: Options) -> int:
    """Delete every resource the state says this pipeline created, and nothing else.

    Resources that existed before the pipeline (an existing gallery, subnet, Batch
    account) are never deleted. Asks first (--yes to skip; required without a terminal).
    """
    require_terminal(opts, "to confirm the deletion")
    session = Session.load(opts)
    try:
        return run(session)
    finally:
        session.close()


def run(session: Session) -> int:
    """Lock the state, list what will go, confirm, delete in reverse order."""
    from batchimage.engine import handle_signals

    with session.journal(lock="destroy") as journal:
        engine = session.engine(journal)
        doomed = engine.destroy_plan()
        if not doomed:
            click.echo(
                f"nothing to destroy: the state records no resources created by {session.spec.name}"
            )
            return 0
        session.connect()
        session.check_pipeline()
        click.echo(f"destroy {session.spec.name} will delete {len(doomed)} resource(s):")
        for key, ref in doomed:
            click.echo(f"  - {ref.kind} {ref.id} (step {key})")
        if not confirm("Delete these resources?", session.opts):
            say("destroy cancelled; nothing was deleted")
            return 1
        session.claim_pipeline()
        with handle_signals(engine.flag):
            result = engine.destroy()
    click.echo(f"destroy complete: {len(result.changes)} step(s) removed (run {result.run_id})")
    return 0
