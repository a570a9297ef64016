"""Plans as Markdown, for a pull-request comment or a CI job summary (`$GITHUB_STEP_SUMMARY`):
a heading with the totals, a table of the specs when there are several, and per spec a
table of the steps that would change, with what and why. Plain text only: no ANSI, no
control characters, every secret shape redacted, Markdown and HTML in the words escaped.

    render_markdown([("quickstart", PlanResult(changes, state="…/quickstart.json"))])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from batchimage.commands.plan import SYMBOLS, has_changes, summary
from batchimage.core.redact import redact
from batchimage.engine.result import CHANGES, Change

HEADING = "batchimage plan"
COUNTED = ("create", "update", "replace", "delete")
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
ESCAPED = re.compile(r"([\\`*_\[\]|#~])")
ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True)
class PlanResult:
    """One spec's plan as the renderer shows it: its changes, where its state is, notes
    (a newer base image), preflight checks that did not pass, or the error that stopped it."""

    changes: list[Change] = field(default_factory=list)
    state: str = ""
    notes: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    error: str | None = None


def plain(text: str) -> str:
    """`text` on one line, redacted, without ANSI sequences or control characters."""
    return " ".join(CONTROL.sub(" ", ANSI.sub("", redact(text))).split())


def words(text: str) -> str:
    """`text` as plain, safe Markdown: Markdown's marks and HTML's `& < >` escaped."""
    escaped = ESCAPED.sub(r"\\\1", plain(text))
    return "".join(ENTITIES.get(ch, ch) for ch in escaped)


def code(text: str) -> str:
    """`text` as a code span (a step key, a path): no escapes inside, pipes kept out of
    the table's way."""
    flat = plain(text).replace("`", "'").replace("|", "\\|")
    return f"`{flat}`"


def counts_phrase(counts: dict[str, int]) -> str:
    """`1 to create, 2 to update, 0 to replace, 1 to delete`."""
    return ", ".join(f"{counts.get(action, 0)} to {action}" for action in COUNTED)


def outcome(result: PlanResult) -> str:
    """One spec's plan in a word or two: failed, changes, no changes."""
    if result.error is not None:
        return "failed"
    return "changes" if has_changes(result.changes) else "no changes"


def totals(results: Sequence[tuple[str, PlanResult]]) -> dict[str, int]:
    """Counts per action over every spec that planned."""
    total = dict.fromkeys(COUNTED, 0)
    for _, result in results:
        if result.error is None:
            for action, count in summary(result.changes).items():
                if action in total:
                    total[action] += count
    return total


def headline(results: Sequence[tuple[str, PlanResult]]) -> str:
    """The line under the heading: what all the plans add up to."""
    specs = len(results)
    failed = sum(1 for _, r in results if r.error is not None)
    changing = sum(1 for _, r in results if r.error is None and has_changes(r.changes))
    sentences = []
    if changing:
        where = f" in {changing} of {specs} specs" if specs > 1 else ""
        sentences.append(f"**Plan: {counts_phrase(totals(results))}**{where}.")
    elif failed < specs:
        sentences.append("**No changes**: Azure matches the spec" + "s" * (specs > 1) + ".")
    if failed:
        sentences.append(f"**{failed} of {specs} specs failed to plan.**")
    return " ".join(sentences) or "No specs."


def spec_table(results: Sequence[tuple[str, PlanResult]]) -> list[str]:
    """One row per spec: its name, the outcome and the counts."""
    lines = ["| spec | plan | " + " | ".join(COUNTED) + " |", "|---|---|" + "---:|" * 4]
    for name, result in results:
        counts = summary(result.changes) if result.error is None else {}
        cells = [str(counts.get(a, 0)) if result.error is None else "" for a in COUNTED]
        lines.append(f"| {words(name)} | {words(outcome(result))} | " + " | ".join(cells) + " |")
    return lines


def change_table(changes: Sequence[Change]) -> list[str]:
    """The steps that would change: symbol, step, action, why."""
    lines = ["| | step | action | why |", "|---|---|---|---|"]
    for c in changes:
        symbol = words(SYMBOLS.get(c.action, "?"))
        lines.append(f"| {symbol} | {code(c.key)} | {words(c.action)} | {words(c.reason)} |")
    return lines


def spec_section(name: str, result: PlanResult) -> list[str]:
    """One spec's plan: its state, its changes (table), the rest counted, notes, checks."""
    lines = [f"### {words(name)}", ""]
    if result.state:
        lines += [f"State: {code(result.state)}", ""]
    if result.error is not None:
        return [*lines, f"**Plan failed:** {words(result.error)}", ""]
    changing = [c for c in result.changes if c.action in CHANGES]
    if changing:
        lines += [*change_table(changing), ""]
    rest = len(result.changes) - len(changing)
    if not changing:
        lines += ["No changes: Azure matches the spec.", ""]
    if rest:
        steps = f"{rest} other step" + "s" * (rest != 1)
        lines += [f"{steps} unchanged (read, no-op or skip).", ""]
    for check in result.checks:
        lines += [f"> **preflight:** {words(check)}", ""]
    for note in result.notes:
        lines += [f"> **note:** {words(note)}", ""]
    return lines


def render_markdown(results: Sequence[tuple[str, PlanResult]]) -> str:
    """The plans of (spec name, plan result) pairs as one Markdown document."""
    lines = [f"## {HEADING}", "", headline(results), ""]
    if len(results) > 1:
        lines += [*spec_table(results), ""]
    for name, result in results:
        lines += spec_section(name, result)
    return "\n".join(lines).rstrip("\n") + "\n"
