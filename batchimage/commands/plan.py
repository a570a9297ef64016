"""`batchimage plan FILE`: what apply would change, and why (exit 0 none, 2 changes, 1 error)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from batchimage.commands.common import Options, Session, azure_options, format_option

if TYPE_CHECKING:
    from batchimage.plan import Change

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


@click.command("plan")
@azure_options()
@click.option("--offline", is_flag=True, help="Decide from the state alone; do not call Azure.")
@click.option("--target", metavar="STEP", help="Plan only this step and its dependencies.")
@format_option()
def command(opts: Options, offline: bool, target: str | None, output_format: str) -> int:
    """Show what `apply` would change for FILE, step by step, with the reason.

    Reads the state and observes Azure through each step's read-only check (unless
    --offline). Exit 0: no changes; 2: changes pending; 1: error.
    """
    session = Session.load(opts, events=False)
    try:
        with session.journal(lock=None) as journal:
            changes = session.engine(journal, offline=offline).plan(offline=offline, target=target)
            where = journal.store.where if journal.store else ""
    finally:
        session.close()
    if output_format == "json":
        click.echo(json.dumps(plan_document(session.spec.name, where, changes), indent=2))
    else:
        click.echo(render_plan(session.spec.name, where, changes))
    return EXIT_CHANGES if has_changes(changes) else EXIT_NO_CHANGES


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


def render_plan(name: str, where: str, changes: list[Change]) -> str:
    """The plan as text: one line per step (symbol, action, key, reason) and a summary."""
    lines = [f"plan for {name} (state {where}):"]
    width = max((len(c.key) for c in changes), default=0)
    for c in changes:
        lines.append(f"  {SYMBOLS.get(c.action, '?')} {c.action:<8} {c.key:<{width}}  {c.reason}")
    counts = summary(changes)
    if has_changes(changes):
        lines.append(
            f"Plan: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['replace']} to replace, {counts['delete']} to delete."
        )
    else:
        lines.append("No changes: Azure matches the spec.")
    return "\n".join(lines)


def plan_document(name: str, where: str, changes: list[Change]) -> dict[str, Any]:
    """The --format json document."""
    return {
        "pipeline": name,
        "state": where,
        "has_changes": has_changes(changes),
        "summary": summary(changes),
        "changes": [c.to_json() for c in changes],
    }
