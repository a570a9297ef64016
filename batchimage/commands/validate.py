"""`batchimage validate FILE...`: check spec files and report every problem, writing nothing."""

from __future__ import annotations

import json
from typing import Any

import click


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one 'path:line:col: field: message' line per problem; json: for CI.",
)
def command(files: tuple[str, ...], output_format: str) -> int:
    """Check spec FILES and report every problem with file:line:column.

    Exit 0 when every file is valid, 2 otherwise. Nothing is written and Azure is not
    contacted; referenced local files (scripts, uploads, VHDs) must exist and ${VAR}
    references must be set. A folder stands for its specs (*.yaml, *.yml), sorted.
    """
    from batchimage.commands.fleet import expand
    from batchimage.core.errors import SpecError, SpecProblem
    from batchimage.spec import load_spec

    checked: list[tuple[str, str | None, list[SpecProblem]]] = []
    for file in expand(files):
        try:
            checked.append((file, load_spec(file).name, []))
        except SpecError as err:
            checked.append((file, None, err.problems))
    valid = not any(problems for _, _, problems in checked)
    if output_format == "json":
        click.echo(json.dumps(_report(checked, valid), indent=2))
        return 0 if valid else 2
    for file, _, problems in checked:
        click.echo("\n".join(str(p) for p in problems) if problems else f"{file}: ok")
    bad = [problems for _, _, problems in checked if problems]
    summary = f"{len(checked)} file(s) checked"
    count = sum(len(problems) for problems in bad)
    summary += f", {count} problem(s) in {len(bad)} file(s)" if bad else ", all valid"
    click.echo(summary, err=True)
    return 0 if valid else 2


def _report(checked: list[tuple[str, str | None, list[Any]]], valid: bool) -> dict[str, Any]:
    """The --format json document: {valid, files: [{path, valid, name, problems}]}."""
    files = [
        {
            "path": file,
            "valid": not problems,
            "name": name,
            "problems": [
                {"line": p.line, "column": p.column, "field": p.field, "message": p.message}
                for p in problems
            ],
        }
        for file, name, problems in checked
    ]
    return {"valid": valid, "files": files}
