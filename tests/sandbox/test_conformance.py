"""The sandbox answers the official REST examples it supports with the same status and
JSON shape (see conformance.py; cases in conformance_cases.py)."""

from __future__ import annotations

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.connection import Connection
from tests.sandbox.conformance import Case, check, shape_problems
from tests.sandbox.conformance_cases import CASES


@pytest.mark.parametrize("case", CASES, ids=[f"{c.id}-{c.status}" for c in CASES])
def test_example(case: Case, sandbox: Connection, clients: AzureClients) -> None:
    if case.setup is not None:
        case.setup(clients, sandbox)
    assert check(case, sandbox, clients) == []


def test_shape_check_catches_differences() -> None:
    example = {"a": {"b": 1, "c": ["x"]}, "d": True, "e": [{"f": "g"}]}
    assert (
        shape_problems(example, {"a": {"b": 2.5, "c": ["y", "z"]}, "d": False, "e": [{"f": "h"}]})
        == []
    )
    assert shape_problems(example, {"a": {"b": "1", "c": []}, "e": [{}]}) == [
        "$.a.b: expected number, got string",
        "$.a.c: expected a non-empty array",
        "$.d: missing",
        "$.e[0].f: missing",
    ]
