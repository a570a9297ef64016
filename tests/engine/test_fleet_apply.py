"""`apply` over many specs, on a sandbox of its own (a fast clock: a quickstart applies in a
few seconds):
- on a terminal, every plan is shown and one question asked: `n` changes nothing, `y`
  applies every spec;
- `--fail-fast` stops the specs already running when one fails, not only those not
  started yet: they end `stopped` (exit 1). A build VM then takes a simulated year to
  create, so the spec that runs cannot finish (it is in its checks or waiting for its
  VM, whatever the machine's speed) when the other spec's preflight fails; it is the
  first submitted, so it has started by then."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.config import DEFAULT_DURATIONS
from batchimage.sandbox.runtime import SandboxProcess, start
from tests.engine.procs import REPO
from tests.engine.sandbox_cli import ci_env, cli
from tests.engine.terminal import Terminal
from tests.engine.test_fleet_cli import rows, totals

YEAR_S = 365 * 24 * 3600.0


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    proc = start(
        tmp_path_factory.mktemp("fleet") / "sandbox",
        env={"BATCHIMAGE_SANDBOX_TIME_SCALE": "0.0002"},
    )
    try:
        yield proc
    finally:
        proc.stop()


def specs_folder(root: Path, *specs: tuple[str, str]) -> Path:
    """A folder of quickstart specs, (name, build VM size) each, with their files."""
    folder = root / "specs"
    shutil.copytree(REPO / "specs" / "files", folder / "files")
    for name, vm_size in specs:
        write_spec(folder, name, vm_size)
    return folder


def write_spec(folder: Path, name: str, vm_size: str) -> None:
    data = yaml.safe_load((REPO / "specs" / "quickstart.yaml").read_text())
    data["name"] = name
    data["image"]["build"]["vm_size"] = vm_size
    data["image"]["capture"]["gallery"]["definition"]["name"] = f"{name}-image"
    data["pools"][0]["id"] = f"{name}-pool"
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_every_plan_is_shown_and_one_question_asked(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    admin = SandboxAdmin(sandbox.connection)
    folder = specs_folder(tmp_path, ("first", "Standard_D2s_v5"), ("second", "Standard_D2s_v5"))
    env = ci_env(sandbox.log_path.parent)
    question = "Apply these changes (2 spec(s) change)?"

    admin.reset_counters()
    refused = Terminal(folder, env, "apply", ".")
    screen = refused.expect(question)
    assert "plan for first" in screen and "plan for second" in screen
    refused.answer("n")
    assert refused.finish() == 1, refused.output
    assert refused.output.count("Apply these changes") == 1  # one question for both
    assert "apply cancelled; nothing was changed" in refused.output
    assert admin.counters()["writes"] == 0

    accepted = Terminal(folder, env, "apply", ".")
    accepted.expect(question)
    accepted.answer("y")
    assert accepted.finish() == 0, accepted.output
    assert "2 spec(s): 2 ok" in accepted.output
    for name in ("first", "second"):
        state = json.loads((folder / ".batchimage" / "state" / f"{name}.json").read_text())
        assert state["steps"]["capture.version"]["status"] == "done"


def test_fail_fast_stops_the_specs_already_running(sandbox: SandboxProcess, tmp_path: Path) -> None:
    admin = SandboxAdmin(sandbox.connection)
    folder = specs_folder(
        tmp_path,
        ("a-running", "Standard_D2s_v5"),
        ("b-failing", "Standard_Nonexistent_v9"),  # its preflight fails
    )
    env = ci_env(sandbox.log_path.parent)
    admin.configure(durations={"vm.create": YEAR_S})
    try:
        run = cli(folder, env, "apply", "--yes", ".", "--parallel", "2", "--fail-fast")
    finally:
        admin.configure(durations={"vm.create": DEFAULT_DURATIONS["vm.create"]})
    assert run.returncode == 1, run.stdout + run.stderr
    table = rows(run.stdout)
    assert table["b-failing"][0] == "failed" and "step preflight failed" in run.stdout
    assert table["a-running"][0] == "stopped", run.stdout  # started, then stopped
    assert "stopped by --fail-fast (progress saved)" in run.stdout
    assert totals(run.stdout) == "2 spec(s): 1 stopped, 1 failed", run.stdout
    # below the table, the failed spec's whole error: the check that failed, what to do
    whole = run.stdout.split(totals(run.stdout), 1)[1]
    assert "b-failing: step preflight failed" in whole and "\n  FAIL " in whole, run.stdout
    assert "Standard_Nonexistent_v9" in whole and "\n  next: " in whole, run.stdout
