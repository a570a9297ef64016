"""`--log-format json`: every line on stderr is one JSON object - events, the SDKs' log
records (with -v) and the command's last word - even when connections drop mid-answer
and azure-core warns `Incomplete download.`. Real CLI, the sandbox dropping connections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.engine.sandbox_cli import ci_env, cli
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.pools.harness import PoolHarness

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

DROPS = [
    {"kind": "drop", "method": "GET", "path": "/virtualMachines/", "nth": 1, "times": 2},
    {"kind": "drop", "method": "GET", "path": "/networkInterfaces/", "nth": 1, "times": 1},
]


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Each line of `stderr` as JSON (a line that is not fails the test, naming it)."""
    found = []
    for line in stderr.splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line on the JSON stream: {line!r}")
    return found


@pytest.mark.parametrize("verbose", [[], ["-v"]], ids=["quiet", "verbose"])
def test_every_stderr_line_is_json_while_connections_drop(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
    verbose: list[str],
) -> None:
    spec = pools.spec("quickstart.yaml")
    env = ci_env(sandbox_folder)
    pools.admin.set_faults(DROPS)
    try:
        applied = cli(
            spec.parent, env, "apply", spec.name, "--yes", "--log-format", "json", *verbose
        )
        fired = sum(rule["fired"] for rule in pools.admin.faults()["rules"])
    finally:
        pools.admin.clear_faults()
    assert applied.returncode == 0, applied.stderr
    assert fired >= 2  # connections did drop mid-answer
    said = json_lines(applied.stderr)
    finished = [e for e in said if e["event"] == "run_finished"]
    assert [e["result"] for e in finished] == ["ok"]
    logs = [e for e in said if e["event"] == "log"]
    incomplete = [e for e in logs if e["message"] == "Incomplete download."]
    if verbose:  # the SDK's records are shown, as JSON: its warning about the drop too
        assert incomplete and incomplete[0]["level"] == "WARNING"
        assert incomplete[0]["logger"].startswith("azure.core")
        assert any(e["logger"].startswith("azure.core.pipeline.policies") for e in logs)
    else:  # the SDK's own records are not shown without -v
        assert not [e for e in logs if e["logger"].startswith("azure")]

    failed = cli(spec.parent, env, "apply", "nosuch.yaml", "--yes", "--log-format", "json")
    assert failed.returncode == 2
    [last] = json_lines(failed.stderr)
    assert last["event"] == "error" and last["exit_code"] == 2 and "nosuch.yaml" in last["message"]
    cli(spec.parent, env, "destroy", spec.name, "--yes")
