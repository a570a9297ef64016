"""`batchimage plan FILE`: what apply would change, and why (exit 0 none, 2 changes, 1 error)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
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
from batchimage.commands.fleet import parallel_option

if TYPE_CHECKING:
    from batchimage.engine import Engine
    from batchimage.plan import Change
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
@azure_options(many=True)
@click.option("--offline", is_flag=True, help="Decide from the state alone; do not call Azure.")
@click.option("--target", metavar="STEP", help="Plan only this step and its dependencies.")
@refresh_option()
@format_option()
@parallel_option()
def command(
    opts: Options,
    offline: bool,
    target: str | None,
    refresh_base: bool,
    output_format: str,
    parallel: int,
) -> int:
    """Show what `apply` would change for each FILE, step by step, with the reason.

    Reads the state and observes Azure through each step's read-only check (unless
    --offline). Says when the Marketplace lists a newer version of a pinned base image
    (--refresh-base plans the move to it). A folder stands for its specs (*.yaml, *.yml).
    Exit 0: no changes; 2: changes pending; 1: error (several specs: the worst of theirs).
    """
    from batchimage.errors import UsageError

    if offline and refresh_base:
        raise UsageError("--refresh-base asks the Marketplace for its versions: drop --offline")
    if opts.fleet:
        from batchimage.commands.many import plan_many

        return plan_many(opts, offline, target, refresh_base, output_format, parallel)
    session = Session.load(opts, events=False)
    try:
        result = plan_one(session, offline=offline, target=target, refresh=refresh_base)
    finally:
        session.close()
    if output_format == "json":
        click.echo(json.dumps(result.document(), indent=2))
    else:
        click.echo(result.text(terminal_width()))
    return EXIT_CHANGES if result.has_changes else EXIT_NO_CHANGES


@dataclass
class PlanResult:
    """One spec's plan: what each step would do, the preflight checks it ran and a newer
    base image it saw (what the text, JSON and other renderers of a plan show)."""

    spec_file: str
    name: str
    where: str
    changes: list[Change]
    report: Report | None
    update: Any
    offline: bool = False

    @property
    def has_changes(self) -> bool:
        return has_changes(self.changes)

    @property
    def not_run(self) -> str:
        """Why the preflight checks did not run, if they did not."""
        return NOT_RUN_OFFLINE if self.offline else NOT_RUN

    def document(self) -> dict[str, Any]:
        """The plan as `--format json` prints it."""
        document = plan_document(self.name, self.where, self.changes)
        update = self.update
        document["base_image_update"] = update.to_json() if update is not None else None
        document["preflight"] = preflight_document(self.report, self.not_run)
        return document

    def text(self, width: int | None) -> str:
        """The plan as text, lines no wider than `width` (a terminal's) when given."""
        checks = preflight_lines(self.report, self.not_run)
        notes = [self.update.message()] if self.update is not None else []
        return render_plan(self.name, self.where, self.changes, checks, width, notes=notes)


def plan_one(session: Session, *, offline: bool, target: str | None, refresh: bool) -> PlanResult:
    """Plan the session's spec (read-only: the state is not locked)."""
    with session.journal(lock=None) as journal:
        if not offline:
            session.connect()
        engine = session.engine(journal, offline=offline, refresh=refresh)
        changes = engine.plan(offline=offline, target=target)
        where = shown_path(journal.store.where) if journal.store else ""
    return PlanResult(
        session.opts.spec_file,
        session.spec.name,
        where,
        changes,
        preflight_report(engine),
        base_update_of(engine),
        offline,
    )


def has_changes(changes: list[Change]) -> bool:
    """True when any step would create, update, replace or delete something."""
    from batchimage.plan import CHANGES

    return any(c.action in CHANGES for c in changes)


def summary(changes: list[Change]) -> dict[str, int]:
    """Counts per action."""
    counts = dict.fromkeys(SYMBOLS, 0)
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    return counts


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
