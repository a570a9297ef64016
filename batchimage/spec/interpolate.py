"""`${VAR}` and `${VAR:-default}` in a spec's string values, taken from the environment.

`$${` writes a literal `${` (for shell scripts written inline); `$VAR` without braces is
left alone. `${VAR:-default}` uses the default when VAR is unset or empty. A variable that
is unset with no default is a located problem naming it. Keys are never interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from batchimage.spec.yaml import DataPath, Position, YamlDocument, YamlProblem

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def interpolate(doc: YamlDocument, text: str, environ: Mapping[str, str]) -> list[YamlProblem]:
    """Replace references in every string value of `doc` in place; return the problems."""
    problems: list[YamlProblem] = []
    lines = text.splitlines()

    def visit(value: Any, path: DataPath) -> Any:
        if isinstance(value, str):
            return _expand(value, path) if "${" in value else value
        if isinstance(value, list):
            return [visit(item, (*path, i)) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {key: visit(item, (*path, key)) for key, item in value.items()}
        return value

    def _expand(value: str, path: DataPath) -> str:
        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            where = _position(doc, lines, path, value, match.start())
            if name is None:
                msg = "a '${' must be '${NAME}' or '${NAME:-default}' (write '$${' for a literal)"
                problems.append(YamlProblem(where, path, msg))
                return whole
            found = environ.get(name)
            if default is not None and not found:
                return default
            if found is None:
                msg = (
                    f"environment variable '{name}' is not set "
                    f"(set it, or write '${{{name}:-default}}' to give a default)"
                )
                problems.append(YamlProblem(where, path, msg))
                return whole
            return found

        return _REFERENCE.sub(replace, value)

    doc.data = visit(doc.data, ())
    return problems


def _position(
    doc: YamlDocument, lines: list[str], path: DataPath, value: str, offset: int
) -> Position:
    """Where character `offset` of the string value at `path` was written, as near as known."""
    start = doc.locate(path)
    style = doc.styles.get(path, "")
    if "\n" not in value and style in ("", "'", '"'):
        return Position(start.line, start.column + offset + (1 if style else 0))
    if style == "|":
        line = start.line + 1 + value.count("\n", 0, offset)
        if line <= len(lines):
            source = lines[line - 1]
            indent = len(source) - len(source.lstrip(" "))
            return Position(line, indent + offset - (value.rfind("\n", 0, offset) + 1) + 1)
    return start
