"""`batchimage output FILE [NAME]`: the pipeline's outputs, for people or CI (from state)."""

from __future__ import annotations

import json
from typing import Any

import click

from batchimage.commands.common import Options, Session, azure_options, format_option
from batchimage.errors import UsageError

HIDDEN = {"resources", "observed_fingerprint"}


@click.command("output")
@azure_options()
@click.argument("name", required=False, metavar="[STEP.FIELD]")
@format_option()
def command(opts: Options, name: str | None, output_format: str) -> int:
    """Print the outputs of finished steps (image version id, VHD URL, pool ids, ...).

    With STEP.FIELD, print that one value alone (raw), e.g. for a CI variable.
    """
    session = Session.load(opts, events=False)
    with session.journal(lock=None) as journal:
        outputs = collect(journal.state)
    if name is not None:
        value = lookup(outputs, name)
        click.echo(value if isinstance(value, str) else json.dumps(value))
        return 0
    if output_format == "json":
        click.echo(json.dumps(outputs, indent=2))
        return 0
    for key, fields in outputs.items():
        for field, value in fields.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            click.echo(f"{key}.{field} = {shown}")
    return 0


def collect(state: Any) -> dict[str, dict[str, Any]]:
    """Per done step, its outputs without the resource bookkeeping."""
    from batchimage.state import StepStatus

    return {
        key: {k: v for k, v in rec.outputs.items() if k not in HIDDEN}
        for key, rec in state.steps.items()
        if rec.status == StepStatus.DONE and rec.outputs
    }


def lookup(outputs: dict[str, dict[str, Any]], name: str) -> Any:
    """The value at STEP.FIELD; a clear UsageError naming what exists otherwise."""
    step, _, field = name.rpartition(".")
    if step not in outputs or field not in outputs[step]:
        known = ", ".join(f"{s}.{f}" for s, fields in outputs.items() for f in fields) or "none"
        raise UsageError(f"no output {name!r}; outputs: {known}")
    return outputs[step][field]
