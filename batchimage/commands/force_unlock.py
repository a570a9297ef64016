"""`batchimage force-unlock FILE`: release a state lock left by a run that is gone."""

from __future__ import annotations

import click

from batchimage.commands.options import Options, azure_options
from batchimage.commands.session import Session
from batchimage.commands.terminal import confirm, require_terminal
from batchimage.ui_lines import say


@click.command("force-unlock")
@azure_options(yes=True)
@click.option(
    "--force",
    is_flag=True,
    help="Break a blob lease even though its holder may still be running (it then stops "
    "at once, saving what it can).",
)
def command(opts: Options, force: bool) -> int:
    """Break the lock on FILE's state (blob lease, or a dead run's local lock record).

    A holder that is still running is not broken: it is named instead, so you can stop it
    (exit 3). A blob lease held from another machine counts as running, since its holder
    renews it; one that died loses it within a minute by itself. `--force` breaks a blob
    lease anyway, with a warning, and removes the pipeline's run marker from its resource
    group; a local kernel lock cannot be broken. Asks first (--yes to skip).
    """
    require_terminal(opts, "to confirm")
    session = Session.load(opts, events=False)
    holder = session.store.holder()
    if holder is not None:
        click.echo(f"the state {session.store.where} is locked by {holder.describe()}")
    if not confirm("Break the lock? Only do this if that run is gone.", opts):
        say("force-unlock cancelled")
        return 1
    if force and holder is not None:
        say(
            f"warning: breaking the lock of {holder.describe()} even if it still runs: it "
            "stops calling Azure as soon as it notices (at its next lease renewal); run "
            "apply again to carry on from what it saved",
            event="warning",
        )
    click.echo(session.store.force_unlock(force=force))
    if force:
        click.echo(remove_marker(session))
    return 0


def remove_marker(session: Session) -> str:
    """Take the run marker off the pipeline's resource group (--force), saying whose it was."""
    from batchimage.azure.run_marker import read_marker, write_marker
    from batchimage.core.ownership import Marks
    from batchimage.pipeline_guard import parse_marker

    if session.clients_factory is None:
        return "no cloud to look for a run marker in"
    clients = session.clients_factory()
    group = session.spec.resource_group
    value = None
    for tag in (Marks.Tag.active_run(session.spec.name), Marks.Tag.ACTIVE_RUN):
        _, found = read_marker(clients, group, tag)
        mark = parse_marker(found)
        if found is not None and (mark is None or mark.pipeline in ("", session.spec.name)):
            write_marker(clients, group, None, tag)
            value = value or found
    if value is None:
        return f"no run marker on resource group {group}"
    marker = parse_marker(value)
    who = marker.describe() if marker else "an unknown run"
    return f"removed the run marker of {who} from resource group {group}"
