"""`batchimage schema`: write or print the JSON Schema of the spec language."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_OUTPUT = "schemas/batchimage.schema.json"


@click.command("schema")
@click.option("--print", "to_stdout", is_flag=True, help="Print the schema instead of writing it.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_OUTPUT,
    show_default=True,
    help="Where to write the schema.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the file is out of date.")
def command(to_stdout: bool, output: Path, check: bool) -> int:
    """Write (or --print) the JSON Schema of the spec language.

    Editors use it for completion and checks: example specs start with
    `# yaml-language-server: $schema=../schemas/batchimage.schema.json`.
    """
    from batchimage.core.errors import UsageError
    from batchimage.spec.schema import schema_text

    text = schema_text()
    if to_stdout:
        click.echo(text, nl=False)
        return 0
    try:
        current = output.read_text(encoding="utf-8") if output.exists() else None
        if check:
            if current == text:
                return 0
            click.echo(f"{output} is out of date; run `batchimage schema`", err=True)
            return 1
        if current != text:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {output}" if current != text else f"{output} is up to date", err=True)
    return 0
