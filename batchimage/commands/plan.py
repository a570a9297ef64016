"""`batchimage plan FILE`: what apply would change, and why (exit 0 none, 2 changes, 1 error)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from batchimage.commands.fleet import parallel_option
from batchimage.commands.options import Options, azure_options, format_option, refresh_option
from batchimage.commands.session import Session, base_update_of
from batchimage.commands.terminal import shown_path, terminal_width

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
@azure_options(many=True)
@click.option("--offline", is_flag=True, help="Decide from the state alone; do not call Azure.")
@click.option("--target", metavar="STEP", help="Plan only this step and its dependencies.")
@refresh_option()
@format_option(
    "text for people, json for CI, markdown for a pull-request comment or a CI job summary "
    "($GITHUB_STEP_SUMMARY).",
    extra=("markdown",),
)
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
    from batchimage.core.errors import UsageError

    if offline and refresh_base:
        raise UsageError("--refresh-base asks the Marketplace for its versions: drop --offline")
    if opts.fleet:
        from batchimage.commands.many import plan_many

        return plan_many(opts, offline, target, refresh_base, output_format, parallel)
    session = Session.load(opts, events=False, snapshot=True)
    try:
        plan = plan_one(session, offline=offline, target=target, refresh=refresh_base)
    finally:
        session.close()
    if output_format == "json":
        click.echo(json.dumps(plan.document(), indent=2))
    elif output_format == "markdown":
        from batchimage.commands.markdown import render_markdown

        click.echo(render_markdown([(plan.name, plan.for_markdown())]), nl=False)
    else:
        click.echo(plan.text(terminal_width()))
    return EXIT_CHANGES if plan.has_changes else EXIT_NO_CHANGES


@dataclass
class SpecPlan:
    """One spec's plan: what each step would do, the preflight checks it ran and the notes
    on its base image (what the text, JSON and Markdown renderers of a plan show)."""

    spec_file: str
    name: str
    where: str
    changes: list[Change]
    report: Report | None
    update: Any  # a newer Marketplace base (`BaseUpdate`), or None
    deprecation: dict[str, Any] | None  # the base's deprecation as JSON, or None
    notes: list[str]  # the newer base and the deprecation, as people read them
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
        document["base_image_deprecation"] = self.deprecation
        document["preflight"] = preflight_document(self.report, self.not_run)
        return document

    def text(self, width: int | None) -> str:
        """The plan as text, lines no wider than `width` (a terminal's) when given."""
        checks = preflight_lines(self.report, self.not_run)
        return render_plan(self.name, self.where, self.changes, checks, width, notes=self.notes)

    def for_markdown(self) -> PlanResult:
        """The plan as the Markdown renderer takes it (`commands/markdown.py`): its changes,
        the preflight checks that did not pass, the notes on its base image."""
        from batchimage.commands.markdown import PlanResult

        results = self.report.results if self.report is not None else []
        checks = tuple(r.line() for r in results if r.status != "pass")
        return PlanResult(self.changes, state=self.where, notes=tuple(self.notes), checks=checks)


def plan_one(session: Session, *, offline: bool, target: str | None, refresh: bool) -> SpecPlan:
    """Plan the session's spec (read-only: the state is not locked)."""
    with session.journal(lock=None) as journal:
        if not offline:
            session.connect()
        engine = session.engine(journal, offline=offline, refresh=refresh)
        planning(engine)
        changes = engine.plan(offline=offline, target=target)
        where = shown_path(journal.store.where) if journal.store else ""
    return SpecPlan(
        session.opts.spec_file,
        session.spec.name,
        where,
        changes,
        preflight_report(engine),
        base_update_of(engine),
        base_deprecation(engine, as_json=True),
        base_notes(engine),
        offline,
    )


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
