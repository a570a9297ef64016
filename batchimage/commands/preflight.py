"""`batchimage preflight FILE`: run the preflight checks alone (read-only; exit 1 on a failure)."""

from __future__ import annotations

import json

import click

from batchimage.commands.common import Options, Session, azure_options, format_option


@click.command("preflight")
@azure_options()
@format_option()
def command(opts: Options, output_format: str) -> int:
    """Check FILE against Azure before building: credentials, providers, storage, Batch
    accounts, base image, gallery, node agent and quota. Creates nothing.

    Prints one line per check (ok / WARN / FAIL with the next action). Exit 0: no check
    failed; 1: at least one failed.
    """
    from batchimage.engine import new_run_id
    from batchimage.steps.base import RunContext
    from batchimage.steps.preflight import run_checks
    from batchimage.steps.resolve_image import BaseImageOutputs, pinned_for

    session = Session.load(opts, events=False)
    try:
        with session.journal(lock=None) as journal:
            session.connect()
            ctx = RunContext(
                spec=session.spec,
                pipeline=session.spec.name,
                run_id=new_run_id(),
                events=session.sink,
                state=journal.state,
                clients_factory=session.clients_factory,
            )
            record = journal.state.steps.get("resolve_image")
            recorded = None
            if record is not None and record.outputs:
                recorded = BaseImageOutputs.model_validate(record.outputs)
            report = run_checks(ctx, pinned_version=pinned_for(ctx, recorded))
    finally:
        session.close()
    if output_format == "json":
        document = {"pipeline": session.spec.name, **report.to_json()}
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(report.render())
    return 1 if report.failed else 0
