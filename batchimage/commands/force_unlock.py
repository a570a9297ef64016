"""`batchimage force-unlock FILE`: release a state lock left by a run that is gone."""

from __future__ import annotations

import click

from batchimage.commands.common import Options, Session, azure_options, confirm, require_terminal


@click.command("force-unlock")
@azure_options(yes=True)
def command(opts: Options) -> int:
    """Break the lock on FILE's state (blob lease, or a dead run's local lock record).

    A local lock held by a live process is not broken: its holder is named instead, so
    you can stop it. Asks first (--yes to skip).
    """
    require_terminal(opts, "to confirm")
    session = Session.load(opts, events=False)
    holder = session.store.holder()
    if holder is not None:
        click.echo(f"the state {session.store.where} is locked by {holder.describe()}")
    if not confirm("Break the lock? Only do this if that run is gone.", opts):
        click.echo("force-unlock cancelled", err=True)
        return 1
    click.echo(session.store.force_unlock())
    return 0
