"""The error codes registered in docs/azure-behaviours.md, and the guard that holds the
sandbox to them while the test suite runs.

The register's **Code** tables (every table whose first column is `Code`) list each code
the sandbox can answer with and its public source. `tests/test_register.py` checks them
against the sandbox's source. At run time, when `BATCHIMAGE_SANDBOX_REGISTER` names the
register file (the test suite sets it), the sandbox answers only registered codes: a fault
rule with another code is refused, and an error answer with another code becomes 500
InternalServerError saying so. Unset (a user's sandbox), nothing is checked.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

ENV = "BATCHIMAGE_SANDBOX_REGISTER"


@dataclass(frozen=True)
class Row:
    """One row of a Code table: the code and the other cells by column name."""

    code: str
    cells: dict[str, str]
    line: int


def rows(text: str) -> list[Row]:
    """The rows of every Markdown table of `text` whose first column is `Code`."""
    out: list[Row] = []
    header: list[str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if all(set(c) <= set("-: ") for c in cells) or header[0] != "Code":
            continue
        code = cells[0].strip("`").strip()
        named = dict(zip(header, cells, strict=False))
        out.append(Row(code, named, number))
    return out


def codes(text: str) -> frozenset[str]:
    """The codes the Code tables of `text` register."""
    return frozenset(row.code for row in rows(text))


@functools.cache
def _load(path: str) -> frozenset[str]:
    return codes(Path(path).read_text(encoding="utf-8"))


def registered() -> frozenset[str] | None:
    """The registered codes when the guard is on (`BATCHIMAGE_SANDBOX_REGISTER` set), else None."""
    path = os.environ.get(ENV)
    return _load(path) if path else None


def unregistered(code: str) -> bool:
    """True when the guard is on and `code` has no row in the register."""
    known = registered()
    return known is not None and code not in known


def refusal(code: str) -> str:
    """What the guard says about an unregistered code."""
    return (
        f"error code {code!r} is not in the register ({os.environ.get(ENV)}): add its row, "
        "with its public source, to the Error codes table"
    )
