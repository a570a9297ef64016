"""`batchimage preflight FILE`: run the preflight checks alone (read-only; exit 1 on a failure)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from batchimage.commands.options import Options, azure_options, format_option
from batchimage.commands.session import Session

if TYPE_CHECKING:
    from batchimage.core.retry import RetryPolicy
    from batchimage.steps.base import RunContext
    from batchimage.steps.preflight import Report


@click.command("preflight")
@azure_options()
@format_option()
def command(opts: Options, output_format: str) -> int:
    """Check FILE against Azure before building: credentials, providers, storage, Batch
    accounts, base image, gallery, node agent and quota. Creates nothing.

    Prints one line per check (ok / WARN / FAIL with the next action). Exit 0: no check
    failed; 1: at least one failed. A passing Azure error (throttling, 5xx) runs the checks
    again, as the spec's `retry` says.
    """
    from batchimage.steps.preflight import run_checks
    from batchimage.steps.resolve_image import BaseImageOutputs, BasePin, pinned_for

    session = Session.load(opts, events=False)
    try:
        with session.journal(lock=None) as journal:
            session.connect()
            ctx = session.context(journal)
            record = journal.state.steps.get("resolve_image")
            recorded = None
            if record is not None and record.outputs:
                recorded = BaseImageOutputs.model_validate(record.outputs)
            pinned = pinned_for(BasePin.of(session.spec), ctx, recorded)
            report = retrying(
                lambda: run_checks(ctx, session.spec, pinned_version=pinned),
                ctx,
                opts,
                session.retry_policy(),
            )
    finally:
        session.close()
    if output_format == "json":
        document = {"pipeline": session.spec.name, **report.to_json()}
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(report.render())
    return 1 if report.failed else 0


def retrying(
    checks: Callable[[], Report], ctx: RunContext, opts: Options, policy: RetryPolicy
) -> Report:
    """`checks()`, run again after a transient Azure failure as `policy` (the spec's
    `retry`) says, each retry said on stderr (a `step_retrying` event with --log-format
    json)."""
    from batchimage.azure.errors import AZURE
    from batchimage.core.events import Event
    from batchimage.core.redact import redact
    from batchimage.core.retry import retry_transient

    def say(exc: BaseException | None, attempt: int, delay: float) -> None:
        code = getattr(exc, "code", None)
        if opts.log_format == "json":
            data = {
                "attempt": attempt,
                "max_attempts": policy.max_attempts,
                "delay_s": round(delay, 3),
                "code": code,
            }
            event = Event("step_retrying", step="preflight", message=redact(str(exc)), data=data)
            ctx.events.emit(event)
        else:
            click.echo(f"{code or 'Azure error'}: checking again in {delay:.0f} s", err=True)

    deadline = ctx.clock.monotonic() + policy.step_deadline_s
    return retry_transient(
        checks,
        policy,
        clock=ctx.clock,
        stop=ctx.stop,
        deadline=deadline,
        on_retry=say,
        classify=AZURE.classify,
    )
