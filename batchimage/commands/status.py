"""`batchimage status FILE`: each step's state from the state file, and - the Azure reads,
skipped with --offline - whether the Marketplace lists a version of a pinned base image
newer than the pin, and the provenance of the pipeline's current image version (from its
tags: readable with the state file lost)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from batchimage.commands.options import Options, azure_options, format_option
from batchimage.commands.session import Session
from batchimage.core.liveness import process_state
from batchimage.core.redact import redact

if TYPE_CHECKING:
    from batchimage.state import RunRecord, State


@click.command("status")
@azure_options(many=True)
@click.option(
    "--offline",
    is_flag=True,
    help="Read the state alone: do not ask the Marketplace for a newer base image version.",
)
@format_option()
def command(opts: Options, offline: bool, output_format: str) -> int:
    """Show each step's status, attempts and last error, the lock holder, and recent runs;
    and whether the Marketplace lists a newer version of a pinned base image (one read,
    skipped with --offline; a failing read is shown, not an error). A folder stands for
    its specs; several are shown in turn."""
    if opts.fleet:
        from batchimage.commands.many import each_spec

        return each_spec(opts, output_format, lambda one: show(one, offline, output_format))
    return show(opts, offline, output_format)


def show(opts: Options, offline: bool, output_format: str) -> int:
    """Print one spec's status (text or JSON)."""
    session = Session.load(opts, events=False)
    try:
        with session.journal(lock=None) as journal:
            state = journal.state
            holder = session.store.holder()
        base = base_status(session, state, offline=offline)
        provenance = provenance_status(session, state, offline=offline)
    finally:
        session.close()
    if output_format == "json":
        doc: dict[str, Any] = json.loads(state.model_dump_json())
        doc["state"] = session.store.where
        doc["locked_by"] = holder.model_dump(mode="json") if holder else None
        for run, shown in zip(state.runs, doc["runs"], strict=True):
            if run.result == "running":
                shown["process"] = process_state(run.pid, run.host, run.started_at)
        doc["base_image"] = base
        doc["image_provenance"] = provenance
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
    if base is not None:
        click.echo(base["message"])
    for line in provenance_lines(provenance):
        click.echo(line)
    for run in state.runs[-5:]:
        click.echo(run_line(run))
    return 0


def base_status(session: Session, state: State, *, offline: bool) -> dict[str, Any] | None:
    """The pinned Marketplace base and the newest version listed, for a spec whose base is
    a Marketplace `latest` pinned in `state` (else None): `image`, `pinned` and `newest`
    (`{version, date}`), `newer`, `checked`, `error` (why it could not be checked) and a
    `message` for people."""
    from batchimage.azure.marketplace import listed_versions, newer
    from batchimage.core.errors import BatchImageError
    from batchimage.steps.resolve_image import (
        BaseImageOutputs,
        BaseUpdate,
        ResolveImage,
        dated,
        dated_json,
        recorded_pin,
    )

    record = state.steps.get(ResolveImage.key)
    try:
        recorded = BaseImageOutputs.model_validate(record.outputs) if record else None
    except ValueError:
        recorded = None
    pin = recorded_pin(session.spec, recorded)
    if pin is None:
        return None
    mp = session.spec.image.base.marketplace
    image = f"{mp.publisher}:{mp.offer}:{mp.sku}"
    how = "follow_latest" if mp.follow_latest else ""
    doc: dict[str, Any] = {
        "image": image,
        "pinned": dated_json(pin),
        "newest": None,
        "newer": False,
        "checked": False,
        "error": None,
    }
    if offline:
        message = f"pinned {dated(pin)} (not checked for a newer version: --offline)"
        return {**doc, "message": f"base image {image}: {message}"}
    try:
        session.connect()
        assert session.clients_factory is not None
        versions = listed_versions(session.clients_factory(), session.spec.location, mp)
    except BatchImageError as exc:
        why = redact(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
        message = f"base image {image}: pinned {dated(pin)}; could not check for a newer one: {why}"
        return {**doc, "error": why, "message": message}
    newest = versions[-1] if versions else None
    doc |= {"checked": True, "newest": dated_json(newest) if newest else None}
    if newest is not None and newer(newest, pin):
        update = BaseUpdate(image, pin, newest, how=how)
        return {**doc, "newer": True, "message": update.message()}
    return {**doc, "message": f"base image {image}: pinned {dated(pin)}, the newest listed"}


def provenance_status(session: Session, state: State, *, offline: bool) -> dict[str, Any] | None:
    """The provenance of the pipeline's current image version, read from its tags in Azure
    (`batchimage.steps.provenance.read_current`, plus `error`), when the state records the
    version or records nothing (a lost state); None offline or when it names no version."""
    from batchimage.core.errors import BatchImageError
    from batchimage.steps.create_image_version import CreateImageVersion
    from batchimage.steps.provenance import read_current

    record = state.steps.get(CreateImageVersion.key)
    if offline or (state.steps and record is None):
        return None
    recorded = record.outputs.get("version") if record and record.outputs else None
    try:
        session.connect()
        assert session.clients_factory is not None
        return read_current(session.clients_factory(), session.spec, recorded)
    except BatchImageError as exc:
        why = redact(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
        return {"version": recorded, "error": why}


def provenance_lines(found: dict[str, Any] | None) -> list[str]:
    """The provenance `provenance_status` read, for people."""
    if found is None:
        return []
    version = found.get("version") or "?"
    if found.get("error"):
        return [f"image version {version}: provenance not read: {found['error']}"]
    prov = found.get("provenance")
    current = "" if found.get("current") else " (not the image the spec makes now)"
    if not prov:
        return [f"image version {version}{current}: no provenance recorded (made before "
                "batchimage kept it)"]  # fmt: skip
    lines = [f"image version {version}{current}, made from (its tags in Azure):"]
    width = max(len(k) for k in prov)
    for key, value in prov.items():
        if value:
            shown = ",".join(value) if isinstance(value, list) else value
            lines.append(f"  {key:<{width}}  {shown}")
    return lines


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
