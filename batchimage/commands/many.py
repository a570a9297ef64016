"""`plan`, `apply`, `destroy`, `status` and `output` over many specs (`batchimage.commands.fleet`):
what each does for one spec of the fleet, and what the command prints for all of them.

- plan: every spec planned at once (`--parallel`), each plan printed in the order given
  (JSON: `{"has_changes", "specs": [...]}`), then the summary table on stderr.
- apply / destroy: with `--yes`, each spec locks, plans and applies (or destroys) on its
  own; without, every plan (or list of what would be deleted) is shown first, one question
  asked, and a spec whose plan differs when its turn comes stops without changing
  anything. Then the summary table on stdout. A destroy that kept a resource because
  another spec of the command still used it is run again once the others are over.
- status / output: each spec in turn, under a heading (JSON: one document per spec).
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import TYPE_CHECKING, Any

import click

from batchimage.commands.fleet import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    Fleet,
    Outcome,
    Spec,
    expand,
    report,
    worst,
)
from batchimage.commands.options import Options
from batchimage.commands.terminal import confirm, require_terminal, terminal_width
from batchimage.core.errors import BatchImageError, StateError
from batchimage.ui_lines import say

if TYPE_CHECKING:
    from batchimage.commands.plan import SpecPlan
    from batchimage.engine.result import Change

Signature = tuple[tuple[str, str], ...]


def signature(changes: list[Change]) -> Signature:
    """What a plan would do, to compare two plans of one spec: (step, action) per change."""
    return tuple((c.key, c.action) for c in changes)


# -- plan ---------------------------------------------------------------------------------


def plan_many(
    opts: Options,
    offline: bool,
    target: str | None,
    refresh: bool,
    output_format: str,
    parallel: int,
) -> int:
    """`plan FILE...`: every spec's plan, in order, and the summary table (stderr)."""
    plans: dict[str, SpecPlan] = {}

    def work(spec: Spec) -> Outcome:
        from batchimage.commands.plan import plan_one

        session = spec.session(events=False, snapshot=True)
        try:
            if not offline:
                spec.connect(session)
            plans[spec.file] = result = plan_one(
                session, offline=offline, target=target, refresh=refresh
            )
        finally:
            session.close()
        counts = [f"{n} to {a}" for a, n in _counts(result.changes).items() if n]
        words = ", ".join(counts) or "no changes"
        code = EXIT_INVALID if result.has_changes else EXIT_OK
        return Outcome(spec.file, spec.name, "changes" if code else "no changes", code, 0, words)

    outcomes = Fleet(opts, parallel=parallel, events=False).run(expand(opts.spec_files), work)
    if output_format == "json":
        docs = []
        for o in outcomes:
            doc: dict[str, Any] = {"spec": o.spec, "result": o.result, "exit_code": o.exit_code}
            if o.spec in plans:
                doc |= plans[o.spec].document()
            else:
                doc |= {"pipeline": o.name or None, "error": o.message}
            docs.append(doc)
        any_changes = any(p.has_changes for p in plans.values())
        click.echo(json.dumps({"has_changes": any_changes, "specs": docs}, indent=2))
    elif output_format == "markdown":
        from batchimage.commands.markdown import PlanResult, render_markdown

        results = [
            (plans[o.spec].name, plans[o.spec].for_markdown())
            if o.spec in plans
            else (o.name or o.spec, PlanResult(error=o.message or o.result))
            for o in outcomes
        ]
        click.echo(render_markdown(results), nl=False)
    else:
        width = terminal_width()
        texts = [plans[o.spec].text(width) for o in outcomes if o.spec in plans]
        click.echo("\n\n".join(texts))
    return report(opts, outcomes, stderr=True)


def _counts(changes: list[Change]) -> dict[str, int]:
    from batchimage.commands.plan import summary

    counts = summary(changes)
    return {a: counts[a] for a in ("create", "update", "replace", "delete")}


# -- apply --------------------------------------------------------------------------------


def apply_many(
    opts: Options,
    target: str | None,
    refresh: bool,
    parallel: int,
    fail_fast: bool,
) -> int:
    """`apply FILE...`: shown and asked once (unless --yes), applied `parallel` at a time."""
    files = expand(opts.spec_files)
    expected: dict[str, Signature] | None = None
    if not opts.yes:
        require_terminal(opts, "to confirm the plans")
        expected, shown = _plans_first(opts, files, target, refresh, parallel)
        if shown is not None:
            return shown

    def work(spec: Spec) -> Outcome:
        from batchimage.commands.apply import quiet_plan
        from batchimage.commands.plan import has_changes

        with spec.locked("apply", refresh=refresh) as (session, engine):
            changes = quiet_plan(engine, session, target)
            if expected is not None and signature(changes) != expected.get(spec.file):
                raise StateError(
                    f"the plan of {spec.name} changed since it was shown (another run, or "
                    "Azure, changed something): nothing was applied; run apply again to "
                    "see the new plan"
                )
            if has_changes(changes):
                session.claim_pipeline()
            result = engine.apply(target=target, reuse_plan=True)
        return Outcome(spec.file, spec.name, "ok", EXIT_OK, result.duration_s, result.summary())

    outcomes = Fleet(opts, parallel=parallel, fail_fast=fail_fast).run(files, work)
    return report(opts, outcomes)


def _plans_first(
    opts: Options, files: list[str], target: str | None, refresh: bool, parallel: int
) -> tuple[dict[str, Signature], int | None]:
    """Before an apply that asks: every spec's plan printed and one question; what each
    plan was, and the exit code when apply stops here (None: go ahead)."""
    from batchimage.commands.plan import plan_one

    plans: dict[str, SpecPlan] = {}

    def work(spec: Spec) -> Outcome:
        session = spec.session(events=False, snapshot=True)
        try:
            spec.connect(session)
            plans[spec.file] = plan_one(session, offline=False, target=target, refresh=refresh)
        finally:
            session.close()
        return Outcome(spec.file, spec.name, "planned", EXIT_OK)

    outcomes = Fleet(opts, parallel=parallel, events=False).run(files, work)
    width = terminal_width()
    click.echo("\n\n".join(plans[o.spec].text(width) for o in outcomes if o.spec in plans))
    if worst(outcomes) != EXIT_OK:
        code = report(opts, outcomes)
        say("apply stopped: not every spec could be planned; nothing was changed")
        return {}, code
    pending = sum(1 for p in plans.values() if p.has_changes)
    if pending and not confirm(f"Apply these changes ({pending} spec(s) change)?", opts):
        say("apply cancelled; nothing was changed")
        return {}, EXIT_FAILED
    return {f: signature(p.changes) for f, p in plans.items()}, None


# -- destroy ------------------------------------------------------------------------------


def destroy_many(opts: Options, parallel: int, fail_fast: bool) -> int:
    """`destroy FILE...`: listed and asked once (unless --yes), destroyed `parallel` at a
    time; a spec that kept a resource another spec used is destroyed again at the end."""
    files = expand(opts.spec_files)
    expected: dict[str, set[str]] | None = None
    if not opts.yes:
        require_terminal(opts, "to confirm the deletion")
        expected = _doomed_first(opts, files, parallel)
        if expected is None:
            return EXIT_FAILED

    kept: dict[str, list[str]] = {}

    def work(spec: Spec) -> Outcome:
        with spec.locked("destroy") as (session, engine):
            engine.adopt_leftovers()
            if not engine.destroy_plan():
                return Outcome(spec.file, spec.name, "ok", EXIT_OK, 0, "nothing to destroy")
            doomed = {ref.id.lower() for _, ref in engine.destroy_plan(observe=True)}
            if expected is not None and not doomed <= expected.get(spec.file, set()):
                raise StateError(
                    f"{spec.name} has more to delete than was shown (another run made "
                    "something since): nothing was deleted; run destroy again to see it"
                )
            if doomed:
                session.claim_pipeline()
            result = engine.destroy()
        removed = sum(1 for change in result.changes if change.action == "delete")
        kept[spec.file] = list(result.kept)
        words = f"{removed} step(s) removed" + "".join(f"; kept {k}" for k in result.kept)
        return Outcome(spec.file, spec.name, "ok", EXIT_OK, result.duration_s, words)

    fleet = Fleet(opts, parallel=parallel, fail_fast=fail_fast)
    outcomes = fleet.run(files, work)
    again = [o.spec for o in outcomes if kept.get(o.spec) and o.exit_code == EXIT_OK]
    if again and not fleet.stopping and sum(o.exit_code == EXIT_OK for o in outcomes) > 1:
        # what they kept may have been held only by specs destroyed since: once more
        expected = None
        retried = {o.spec: o for o in Fleet(opts, parallel=1).run(again, work)}
        outcomes = [_merged(o, retried.get(o.spec)) for o in outcomes]
    return report(opts, outcomes)


def _merged(first: Outcome, second: Outcome | None) -> Outcome:
    """A spec destroyed twice: the second run's result, with both runs' time and words."""
    if second is None:
        return first
    second.duration_s += first.duration_s
    head = first.changed.split("; kept")[0]
    second.changed = f"{head}; then {second.changed}"
    return second


def _doomed_first(opts: Options, files: list[str], parallel: int) -> dict[str, set[str]] | None:
    """Before a destroy that asks: what each spec would delete, printed, and one question;
    the ids per spec (None: cancelled or not every spec could be read)."""
    shown: dict[str, list[str]] = {}
    ids: dict[str, set[str]] = {}

    def work(spec: Spec) -> Outcome:
        session = spec.session(events=False)
        try:
            with session.journal(lock=None) as journal:
                spec.connect(session)
                engine = session.engine(journal)
                engine.adopt_leftovers()
                doomed = engine.destroy_plan(observe=True)
        finally:
            session.close()
        shown[spec.file] = [f"  - {ref.kind} {ref.id} (step {key})" for key, ref in doomed]
        ids[spec.file] = {ref.id.lower() for _, ref in doomed}
        return Outcome(spec.file, spec.name, "listed", EXIT_OK)

    outcomes = Fleet(opts, parallel=parallel, events=False).run(files, work)
    for o in outcomes:
        lines = shown.get(o.spec)
        if lines:
            click.echo(f"destroy {o.name} will delete {len(lines)} resource(s):")
            click.echo("\n".join(lines))
        elif lines is not None:
            click.echo(f"nothing to destroy for {o.name}")
    if worst(outcomes) != EXIT_OK:
        report(opts, outcomes)
        say("destroy stopped: not every spec could be read; nothing was deleted")
        return None
    if any(shown.values()) and not confirm("Delete these resources?", opts):
        say("destroy cancelled; nothing was deleted")
        return None
    return ids


# -- status and output --------------------------------------------------------------------


def each_spec(opts: Options, output_format: str, show: Any) -> int:
    """`status` / `output` over FILE...: `show(opts_for_one_spec)` for each spec in turn,
    under a `== spec (file) ==` heading; JSON: `{"specs": [{spec, name, exit_code,
    <document>}]}`. A spec that fails is reported and the others still shown."""
    import dataclasses

    from batchimage.ui_lines import error

    docs: list[dict[str, Any]] = []
    outcomes: list[Outcome] = []
    files = expand(opts.spec_files)
    if opts.state_path:
        Fleet(opts)  # refuses --state with many specs
    for file in files:
        one = dataclasses.replace(opts, spec_file=file, spec_files=(file,))
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                code = show(one)
        except BatchImageError as err:
            code, message = err.exit_code, str(err).splitlines()[0]
            outcomes.append(Outcome(file, "", "failed", code, message=message))
            if output_format == "json":
                docs.append({"spec": file, "exit_code": code, "error": message})
            else:
                click.echo(f"== {file} ==")
                error(message, code)
            continue
        outcomes.append(Outcome(file, "", "ok", code))
        if output_format == "json":
            docs.append({"spec": file, "exit_code": code, "document": json.loads(out.getvalue())})
        else:
            click.echo(f"== {file} ==")
            click.echo(out.getvalue(), nl=False)
    if output_format == "json":
        click.echo(json.dumps({"specs": docs}, indent=2))
    return worst(outcomes)
