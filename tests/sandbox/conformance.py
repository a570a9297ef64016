"""Replay official Azure REST API examples against the sandbox and compare shapes.

An example file (`x-ms-examples`) holds `parameters` and `responses` but not the URL, so
each `Case` names the method and path template (placeholders are example parameter
names). `replay()` fills the template (subscription -> the sandbox's), sends the body
parameter as JSON with a sandbox token, and `shape_problems()` checks that the response
has every key the example shows, with the same JSON value type, at every level (ids,
names and values may differ; a non-empty example list needs a non-empty answer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from batchimage.azure.clients import AzureClients
from batchimage.sandbox.connection import Connection

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "azure-rest-examples"
if not EXAMPLES.exists():  # the shared folder lives beside the repository
    EXAMPLES = Path("/work/shared/azure-rest-examples")


@dataclass(frozen=True)
class Case:
    """One example replayed: which request it stands for and what answer to expect.

    `status`: the status the sandbox must answer (the example's response of that status
    is the shape to match). `setup(clients, connection)` creates prerequisites through
    the SDK. `query`: extra query parameters. `plane`: "arm" or "batch" (then the path
    is relative to the Batch account endpoint of `batch_account`, default the seeded one).
    `replace`: (placeholder, sandbox value) pairs substituted in the example's parameters
    (as JSON text) before the request is built, for examples that name placeholders; a
    value may hold `{sandbox-blob-root}` (the sandbox's Azurite root, which has a port).
    """

    example: str
    method: str
    path: str
    status: int
    body: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    setup: Callable[[AzureClients, Connection], None] | None = None
    plane: str = "arm"
    batch_account: str | None = None
    ignore: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return self.example.removesuffix(".json")


def load(case: Case, conn: Connection | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / case.example).read_text())
    if case.replace:
        text = json.dumps(data["parameters"])
        for placeholder, value in case.replace:
            if conn is not None:
                value = value.replace("{sandbox-blob-root}", conn.blob_endpoint_root)
            text = text.replace(placeholder, value)
        data["parameters"] = json.loads(text)
    return data


def url_for(case: Case, example: dict[str, Any], conn: Connection) -> str:
    params = dict(example["parameters"])
    params["subscriptionId"] = conn.subscription_id

    def fill(m: re.Match[str]) -> str:
        return quote(str(params[m.group(1)]), safe="")

    path = re.sub(r"\{(\w[\w-]*)\}", fill, case.path)
    if case.plane == "batch":
        base = f"https://{conn.batch_endpoint(case.batch_account or conn.batch_account)}"
    else:
        base = conn.arm_endpoint
    return base + path


def replay(
    case: Case, conn: Connection, clients: AzureClients
) -> tuple[requests.Response, dict[str, Any]]:
    """Send the example's request; returns the response and the example."""
    example = load(case, conn)
    params = example["parameters"]
    version = params.get("api-version") or params.get("version")
    query = {"api-version": version, **case.query}
    scope = conn.batch_scope if case.plane == "batch" else conn.arm_scope
    token = clients.credential.get_token(scope).token
    body = params.get(case.body) if case.body else None
    if body is not None and params.get("subscriptionId"):  # ids inside the body, too
        text = json.dumps(body).replace(
            f"/subscriptions/{params['subscriptionId']}/", f"/subscriptions/{conn.subscription_id}/"
        )
        body = json.loads(text)
    answer = requests.request(
        case.method,
        url_for(case, example, conn),
        params=query,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=conn.ca_bundle,
        timeout=30,
    )
    return answer, example


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_problems(
    expected: Any, actual: Any, where: str = "$", ignore: tuple[str, ...] = ()
) -> list[str]:
    """Where `actual` lacks a key of `expected` or has another JSON type there."""
    if where in ignore:
        return []
    if expected is None:
        return []
    if _kind(expected) != _kind(actual):
        return [f"{where}: expected {_kind(expected)}, got {_kind(actual)}"]
    problems: list[str] = []
    if isinstance(expected, dict):
        for key, value in expected.items():
            if f"{where}.{key}" in ignore:
                continue
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += shape_problems(value, actual[key], f"{where}.{key}", ignore)
    elif isinstance(expected, list):
        if expected and not actual:
            problems.append(f"{where}: expected a non-empty array")
        for i, (want, got) in enumerate(zip(expected, actual, strict=False)):
            problems += shape_problems(want, got, f"{where}[{i}]", ignore)
    return problems


def check(case: Case, conn: Connection, clients: AzureClients) -> list[str]:
    """Replay `case`; every difference from the example (status, headers, body shape)."""
    answer, example = replay(case, conn, clients)
    expected = example["responses"].get(str(case.status))
    if expected is None:
        return [f"the example has no {case.status} response"]
    problems = []
    if answer.status_code != case.status:
        problems.append(f"status {answer.status_code}, expected {case.status}: {answer.text[:300]}")
    for header in expected.get("headers", {}):
        if header.lower() not in {h.lower() for h in answer.headers}:
            problems.append(f"header {header} missing")
    if "body" in expected:
        try:
            body = answer.json()
        except ValueError:
            return [*problems, f"body is not JSON: {answer.text[:200]!r}"]
        problems += shape_problems(expected["body"], body, ignore=case.ignore)
    return problems
