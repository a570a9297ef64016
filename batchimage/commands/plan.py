"""`batchimage plan FILE`: what apply would change, and why (exit 0 none, 2 changes, 1 error)."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

import click

from batchimage.commands.common import (
    Options,
    Session,
    azure_options,
    base_update_of,
    format_option,
    refresh_option,
    shown_path,
    terminal_width,
)

if TYPE_CHECKING:
    from batchimage.commands.markdown import PlanResult
    from batchimage.engine.coordinator import Engine
    from batchimage.engine.result import Change
    from batchimage.steps.preflight import Report

SYMBOLS = {
    "create": "+",
    "update": "~",
    "replace": "±",
    "delete": "-",
    "no-op": "=",
    "read": ">",
    "skip": ".",
}
EXIT_NO_CHANGES = 0
EXIT_CHANGES = 2
NOT_RUN_OFFLINE = "not run (--offline: the checks need Azure)"
NOT_RUN = "not run (the planned steps do not need it)"
CHECK_INDENT = "      "


@click.command("plan")
@azure_options()
@click.option("--offline", is_flag=True, help="Decide from the state alone; do not call Azure.")
@click.option("--target", metavar="STEP", help="Plan only this step and its dependencies.")
@refresh_option()
@format_option(
    "text for people, json for CI, markdown for a pull-request comment or a CI job summary "
    "($GITHUB_STEP_SUMMARY).",
    extra=("markdown",),
)
def command(
    opts: Options, offline: bool, target: str | None, refresh_base: bool, output_format: str
) -> int:
    """Show what `apply` would change for FILE, step by step, with the reason.

    Reads the state and observes Azure through each step's read-only check (unless
    --offline). Says when the Marketplace lists a newer version of a pinned base image
    (--refresh-base plans the move to it). Exit 0: no changes; 2: changes pending; 1: error.
    """
    from batchimage.core.errors import UsageError

    if offline and refresh_base:
        raise UsageError("--refresh-base asks the Marketplace for its versions: drop --offline")
    session = Session.load(opts, events=False)
    try:
        with session.journal(lock=None) as journal:
            if not offline:
                session.connect()
            engine = session.engine(journal, offline=offline, refresh=refresh_base)
            planning(engine)
            changes = engine.plan(offline=offline, target=target)
            where = shown_path(journal.store.where) if journal.store else ""
    finally:
        session.close()
    report = preflight_report(engine)
    update = base_update_of(engine)
    not_run = NOT_RUN_OFFLINE if offline else NOT_RUN
    if output_format == "json":
        document = plan_document(session.spec.name, where, changes)
        document["base_image_update"] = update.to_json() if update is not None else None
        document["base_image_deprecation"] = base_deprecation(engine, as_json=True)
        document["preflight"] = preflight_document(report, not_run)
        click.echo(json.dumps(document, indent=2))
    elif output_format == "markdown":
        from batchimage.commands.markdown import render_markdown

        result = plan_result(where, changes, report, base_notes(engine))
        click.echo(render_markdown([(session.spec.name, result)]), nl=False)
    else:
        checks = preflight_lines(report, not_run)
        notes = base_notes(engine)
        click.echo(
            render_plan(session.spec.name, where, changes, checks, terminal_width(), notes=notes)
        )
    return EXIT_CHANGES if has_changes(changes) else EXIT_NO_CHANGES


def plan_result(
    where: str, changes: list[Change], report: Report | None, notes: list[str]
) -> PlanResult:
    """One spec's plan as the Markdown renderer takes it (`commands/markdown.py`): its
    changes, the preflight checks that did not pass, the notes on its base image."""
    from batchimage.commands.markdown import PlanResult

    results = report.results if report is not None else []
    checks = tuple(r.line() for r in results if r.status != "pass")
    return PlanResult(changes, state=where, notes=tuple(notes), checks=checks)


def base_deprecation(engine: Engine, *, as_json: bool = False) -> Any:
    """The deprecation the plan's base image step saw (its message, or with `as_json` its
    JSON: image, state, scheduled, alternative, message), or None."""
    from batchimage.steps.resolve_image import ResolveImage

    for node in engine.nodes:
        if isinstance(node.step, ResolveImage) and node.step.deprecation is not None:
            urn, deprecation = node.step.deprecation
            return deprecation.to_json(urn) if as_json else deprecation.message(urn)
    return None


def base_notes(engine: Engine) -> list[str]:
    """The notes plan and apply show above the changes: a newer base image, a base image
    scheduled for deprecation."""
    update = base_update_of(engine)
    found = [update.message() if update is not None else None, base_deprecation(engine)]
    return [note for note in found if note]


def has_changes(changes: list[Change]) -> bool:
    """True when any step would create, update, replace or delete something."""
    from batchimage.engine.result import CHANGES

    return any(c.action in CHANGES for c in changes)


def summary(changes: list[Change]) -> dict[str, int]:
    """Counts per action."""
    counts = dict.fromkeys(SYMBOLS, 0)
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    return counts


def planning(engine: Engine) -> None:
    """Tell the preflight step it checks for a plan: the caller's own write access warns
    (a plan writes nothing; its identity may be a reader's)."""
    from batchimage.steps.run_preflight import RunPreflight

    for node in engine.nodes:
        if isinstance(node.step, RunPreflight):
            node.step.planning = True


def preflight_report(engine: Engine) -> Report | None:
    """The report of the preflight checks this plan ran; None when they did not run."""
    from batchimage.steps.run_preflight import RunPreflight

    for node in engine.nodes:
        if isinstance(node.step, RunPreflight):
            return node.step.report
    return None


def preflight_lines(report: Report | None, not_run: str) -> list[str]:
    """Every check as `ok|WARN|FAIL <check>: <message>` and the summary (the preflight
    command's renderer), or one line saying why the checks did not run."""
    if report is None:
        return [f"preflight: {not_run}"]
    return report.render().splitlines()


def preflight_document(report: Report | None, not_run: str) -> dict[str, Any]:
    """The checks for --format json: ran, failed, summary, checks [{name, status, message}]."""
    if report is None:
        return {"ran": False, "reason": not_run, "checks": []}
    return {"ran": True, **report.to_json()}


def render_plan(
    name: str,
    where: str,
    changes: list[Change],
    preflight: list[str] | None = None,
    width: int | None = None,
    *,
    notes: list[str] | None = None,
) -> str:
    """The plan as text: one line per step (symbol, action, key, reason), the preflight
    checks under the preflight step (when given), `notes` (e.g. a newer base image), and a
    summary; with a `width` (a terminal's), longer lines wrap under their own text."""
    from batchimage.steps.run_preflight import RunPreflight

    lines = fold(f"plan for {name} (state {where}):", "  ", width)
    checks = [
        part
        for line in preflight or []
        for part in fold(CHECK_INDENT + line, CHECK_INDENT + "     ", width)
    ]
    if checks and not any(c.kind == RunPreflight.kind for c in changes):
        lines += checks
    key_w = max((len(c.key) for c in changes), default=0)
    for c in changes:
        head = f"  {SYMBOLS.get(c.action, '?')} {c.action:<8} {c.key:<{key_w}}  "
        lines += fold(head + c.reason, " " * len(head), width)
        if c.kind == RunPreflight.kind:
            lines += checks
    for note in notes or []:
        lines += fold(f"  note: {note}", "        ", width)
    counts = summary(changes)
    if has_changes(changes):
        lines.append(
            f"Plan: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['replace']} to replace, {counts['delete']} to delete."
        )
    else:
        lines.append("No changes: Azure matches the spec.")
    return "\n".join(lines)


def fold(line: str, indent: str, width: int | None) -> list[str]:
    """`line` as lines no wider than `width` (words kept whole), the later ones after
    `indent` (after CHECK_INDENT when `indent` would take half the width); as it is
    without a width."""
    if width is None or len(line) <= width:
        return [line]
    if len(indent) > width // 2:
        indent = CHECK_INDENT
    return textwrap.wrap(
        line,
        width,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [line]


def plan_document(name: str, where: str, changes: list[Change]) -> dict[str, Any]:
    """The --format json document."""
    return {
        "pipeline": name,
        "state": where,
        "has_changes": has_changes(changes),
        "summary": summary(changes),
        "changes": [c.to_json() for c in changes],
    }
