"""`batchimage status FILE`: each step's state from the state file (no Azure calls)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from batchimage.commands.common import Options, Session, azure_options, format_option
from batchimage.liveness import process_state
from batchimage.redact import redact

if TYPE_CHECKING:
    from batchimage.state import RunRecord


@click.command("status")
@azure_options()
@format_option()
def command(opts: Options, output_format: str) -> int:
    """Show each step's status, attempts and last error, the lock holder, and recent runs."""
    session = Session.load(opts, events=False)
    with session.journal(lock=None) as journal:
        state = journal.state
        holder = session.store.holder()
    if output_format == "json":
        doc: dict[str, Any] = json.loads(state.model_dump_json())
        doc["state"] = session.store.where
        doc["locked_by"] = holder.model_dump(mode="json") if holder else None
        for run, shown in zip(state.runs, doc["runs"], strict=True):
            if run.result == "running":
                shown["process"] = process_state(run.pid, run.host, run.started_at)
        click.echo(json.dumps(doc, indent=2))
        return 0
    click.echo(f"{state.pipeline}: state {session.store.where}")
    if holder is not None:
        click.echo(f"locked by {holder.describe()}")
    if not state.steps:
        click.echo("no steps recorded yet (run `batchimage apply`)")
    width = max((len(k) for k in state.steps), default=0)
    for key, rec in state.steps.items():
        when = rec.finished_at.strftime("%Y-%m-%d %H:%M:%S") if rec.finished_at else "-"
        line = f"  {key:<{width}}  {rec.status.value:<9} {when}  attempts {rec.attempts}"
        if rec.created:
            line += f"  created {len(rec.created)}"
        click.echo(line)
        if rec.last_error is not None:
            err = rec.last_error
            extra = ", ".join(
                f"{label} {value}"
                for label, value in (("code", err.code), ("request id", err.request_id))
                if value
            )
            click.echo(
                f"  {'':<{width}}  last error: {redact(err.message)}"
                + (f" ({extra})" if extra else "")
            )
    for run in state.runs[-5:]:
        click.echo(run_line(run))
    return 0


def run_line(run: RunRecord) -> str:
    """One recorded run as status shows it. A run recorded as running is checked: one whose
    process is gone (killed, crashed) is not shown as running."""
    started = run.started_at.strftime("%Y-%m-%d %H:%M:%S")
    where = f"pid {run.pid} on {run.host}"
    result: str = run.result
    if run.result == "running":
        alive = process_state(run.pid, run.host, run.started_at)
        if alive == "gone":
            result = "did not finish"
            where += " is gone; the next apply resumes"
        elif alive == "unknown":
            result = "running or stopped"
            where += ", another machine: not checked"
    return f"run {run.run_id}: {run.command} {result} (started {started}, {where})"
