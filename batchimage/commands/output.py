"""`batchimage output FILE... [STEP.FIELD]`: the pipeline's outputs, for people or CI (from state).

Text shows what the pipeline made and a person uses: the image version, each pool, a
VHD or managed image (the outputs each step kind lists in `Step.shown`); `--all` every
finished step's outputs but those of build steps cleanup deleted (named in one line).
JSON is every finished step's outputs, `{step: {field: value}}`, unchanged for CI.

Both add the provenance of the current image version, read from its tags in Azure (one
read, skipped with --offline), as `capture.version.provenance`: so a lost state file
still shows which version the pipeline made and from what."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from batchimage.commands.options import Options, azure_options, format_option
from batchimage.commands.session import Session
from batchimage.commands.status import provenance_lines, provenance_status
from batchimage.core.errors import UsageError

HIDDEN = {"resources", "observed_fingerprint", "drift", "drift_action"}


@click.command("output")
@azure_options(many=True)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Text: every finished step's outputs (build steps cleanup deleted are only named).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Read the state alone: do not read the image version's provenance from Azure.",
)
@format_option()
def command(opts: Options, show_all: bool, offline: bool, output_format: str) -> int:
    """Print what the pipeline made: the image version, pools, VHD or managed image.

    FILE... [STEP.FIELD]: with STEP.FIELD, print that one value alone (raw), e.g. for a CI
    variable. --all shows every step's outputs; --format json gives every step's outputs
    as one JSON object. A folder stands for its specs; several are shown in turn.
    """
    files, name = split_name(opts.spec_files)
    opts = dataclasses.replace(opts, spec_file=files[0], spec_files=files)
    if opts.fleet:
        from batchimage.commands.many import each_spec

        return each_spec(
            opts, output_format, lambda one: show(one, name, show_all, offline, output_format)
        )
    return show(opts, name, show_all, offline, output_format)


def split_name(args: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    """FILE... and the STEP.FIELD after them, if any: a last argument that is neither a
    path that exists nor a *.yaml / *.yml name."""
    last = args[-1]
    if len(args) > 1 and not Path(last).exists() and not last.endswith((".yaml", ".yml")):
        return args[:-1], last
    return args, None


def show(opts: Options, name: str | None, show_all: bool, offline: bool, output_format: str) -> int:
    """Print one spec's outputs (text, JSON, or the one value `name` names)."""
    session = Session.load(opts, events=False)
    with session.journal(lock=None) as journal:
        state = journal.state
    outputs = collect(state)
    if name is not None and not name.startswith("capture.version.provenance"):
        value = lookup(outputs, name)
        click.echo(value if isinstance(value, str) else json.dumps(value))
        return 0
    try:
        found = provenance_status(session, state, offline=offline)
    finally:
        session.close()
    if found is not None:
        version = outputs.setdefault("capture.version", {})
        for key in ("version", "version_id"):
            version.setdefault(key, found.get(key))
        version["provenance"] = found.get("provenance") if not found.get("error") else found
    if name is not None:
        value = lookup(outputs, name)
        click.echo(value if isinstance(value, str) else json.dumps(value))
        return 0
    if output_format == "json":
        click.echo(json.dumps(outputs, indent=2))
        return 0
    for line in text_lines(session, state, outputs, show_all):
        click.echo(line)
    for line in provenance_lines(found):
        click.echo(line)
    return 0


def collect(state: Any) -> dict[str, dict[str, Any]]:
    """Per done step, its outputs without the resource bookkeeping."""
    from batchimage.state import StepStatus

    return {
        key: {k: v for k, v in rec.outputs.items() if k not in HIDDEN}
        for key, rec in state.steps.items()
        if rec.status == StepStatus.DONE and rec.outputs
    }


def text_lines(
    session: Session, state: Any, outputs: dict[str, dict[str, Any]], show_all: bool
) -> list[str]:
    """`step.field = value` lines: the main outputs, or (`show_all`) all but cleaned ones."""
    from batchimage.plan import cleaned_by
    from batchimage.steps.base import STEP_KINDS, StepIndex

    index = StepIndex(session.steps)
    # in the pipeline's order (the state's holds steps that ran side by side as they began)
    cleaned = [s.key for s in index.steps if s.key in outputs and cleaned_by(s.key, index, state)]
    lines: list[str] = []
    rest = 0
    for key, fields in outputs.items():
        kind = STEP_KINDS.get(state.steps[key].kind)
        shown = kind.shown if kind is not None else ()
        for field, value in fields.items():
            if (key not in cleaned) if show_all else (field in shown):
                lines.append(f"{key}.{field} = {_text(value)}")
            elif key not in cleaned:
                rest += 1
    if not lines:
        lines.append(f"no outputs yet: run `batchimage apply {session.opts.spec_file}`")
    if cleaned and show_all:
        lines.append(f"# {', '.join(cleaned)}: deleted by cleanup after the last apply")
    if rest and not show_all:
        lines.append(f"# {rest} more output(s) of other steps: batchimage output --all")
    return lines


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def lookup(outputs: dict[str, dict[str, Any]], name: str) -> Any:
    """The value at STEP.FIELD (FIELD.KEY... inside a field that is an object, e.g.
    capture.version.provenance.base); a clear UsageError naming what exists otherwise."""
    for step in sorted(outputs, key=len, reverse=True):
        if not name.startswith(f"{step}."):
            continue
        value: Any = outputs[step]
        for part in name[len(step) + 1 :].split("."):
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            return value
    known = ", ".join(f"{s}.{f}" for s, fields in outputs.items() for f in fields) or "none"
    raise UsageError(f"no output {name!r}; outputs: {known}")
