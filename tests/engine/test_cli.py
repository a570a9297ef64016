"""The real `batchimage` commands as subprocesses: exit codes, formats, state commands."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import forkserver
from tests.engine.procs import REPO, child_env, start_ready
from tests.engine.test_process import wait_for_event

SCRIPT = Path(__file__).with_name("pipeline_script.py")
HOLDER = Path(__file__).with_name("lock_holder.py")


def batchimage(*args: str) -> subprocess.CompletedProcess[str]:
    """`batchimage args...` as its own process (`tests.forkserver`), stdin closed."""
    return forkserver.run(list(args), cwd=REPO, env=child_env(), timeout=120)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """A copy of the quickstart spec (its default state goes beside it, in tmp)."""
    folder = tmp_path / "specs"
    shutil.copytree(REPO / "specs", folder)
    return folder / "quickstart.yaml"


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A state file for pipeline `quickstart` holding the in-test steps a, b, c, d."""
    state = tmp_path / "recorded.json"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(tmp_path / "world.json"),
            str(state),
            "--yes",
            "--name",
            "quickstart",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return state


def test_plan_of_a_new_pipeline_exits_2(spec: Path) -> None:
    # Exit 0 ("No changes") after an apply is tested in tests/pipeline/test_quickstart.py.
    result = batchimage("plan", str(spec), "--offline")
    assert result.returncode == 2, result.stderr
    assert "+ create   capture.version" in result.stdout


def test_plan_with_changes_exits_2_and_json_lists_them(spec: Path, recorded: Path) -> None:
    # The recorded steps are not in this spec's plan: they are planned for deletion.
    result = batchimage(
        "plan", str(spec), "--offline", "--state", str(recorded), "--format", "json"
    )
    assert result.returncode == 2, result.stderr
    doc = json.loads(result.stdout)
    assert doc["has_changes"] is True
    assert doc["summary"]["delete"] == 4
    deleted = {c["key"] for c in doc["changes"] if c["action"] == "delete"}
    assert deleted == {"a", "b", "c", "d"}
    text = batchimage("plan", str(spec), "--offline", "--state", str(recorded))
    assert text.returncode == 2
    assert "no longer in the spec" in text.stdout
    assert "0 to update, 0 to replace, 4 to delete." in text.stdout


def test_plan_refuses_a_corrupt_state_with_exit_1(spec: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{truncated")
    result = batchimage("plan", str(spec), "--state", str(bad))
    assert result.returncode == 1
    assert "unreadable" in result.stderr and "bad.json.bak" in result.stderr
    assert bad.read_text() == "{truncated"


def test_state_of_another_pipeline_is_refused(spec: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "w.json"), str(other), "--yes"],
        capture_output=True,
        cwd=REPO,
        env=child_env(),
        timeout=60,
        check=True,
    )
    result = batchimage("status", str(spec), "--state", str(other))
    assert result.returncode == 1
    assert "belongs to pipeline 'demo', not 'quickstart'" in result.stderr


def test_apply_without_a_terminal_needs_yes(spec: Path) -> None:
    result = batchimage("apply", str(spec))
    assert result.returncode == 2
    assert "stdin is not a terminal" in result.stderr and "--yes" in result.stderr


def test_status_and_output(spec: Path, recorded: Path) -> None:
    status = batchimage("status", str(spec), "--state", str(recorded))
    assert status.returncode == 0, status.stderr
    assert "quickstart: state" in status.stdout
    assert "  c  done" in status.stdout
    assert "apply ok" in status.stdout

    as_json = json.loads(
        batchimage("status", str(spec), "--state", str(recorded), "--format", "json").stdout
    )
    assert as_json["steps"]["c"]["status"] == "done" and as_json["locked_by"] is None

    outputs = json.loads(
        batchimage("output", str(spec), "--state", str(recorded), "--format", "json").stdout
    )
    assert outputs["c"] == {"name": "c", "value": "v1(v1(v1))"}
    one = batchimage("output", str(spec), "--state", str(recorded), "c.value")
    assert one.stdout == "v1(v1(v1))\n"
    missing = batchimage("output", str(spec), "--state", str(recorded), "c.nope")
    assert missing.returncode == 2 and "outputs: a.name" in missing.stderr


def test_status_names_the_lock_holder_and_force_unlock_refuses_a_live_one(
    spec: Path, recorded: Path
) -> None:
    holder = start_ready(HOLDER, str(recorded), "30")
    try:
        status = batchimage("status", str(spec), "--state", str(recorded))
        assert f"locked by `batchimage apply` (pid {holder.pid}" in status.stdout
        forced = batchimage("force-unlock", str(spec), "--state", str(recorded), "--yes")
        assert forced.returncode == 3
        assert f"pid {holder.pid}" in forced.stderr
    finally:
        holder.kill()
        holder.wait()


def test_force_unlock_clears_a_dead_runs_lock(spec: Path, recorded: Path) -> None:
    holder = start_ready(HOLDER, str(recorded), "30")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    refused = batchimage("force-unlock", str(spec), "--state", str(recorded))
    assert refused.returncode == 2 and "--yes" in refused.stderr
    result = batchimage("force-unlock", str(spec), "--state", str(recorded), "--yes")
    assert result.returncode == 0, result.stderr
    assert f"cleared the lock left by `batchimage apply` (pid {holder.pid}" in result.stdout


def test_sandbox_state_is_kept_apart(spec: Path) -> None:
    result = batchimage("status", str(spec), "--sandbox", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"].endswith(".batchimage/state/quickstart.sandbox.json")
    real = json.loads(batchimage("status", str(spec), "--format", "json").stdout)
    assert real["state"].endswith(".batchimage/state/quickstart.json")


def test_help_does_not_import_the_azure_sdk() -> None:
    code = (
        "import sys; from batchimage.cli import main\n"
        "for name in ('plan','apply','destroy','status','output','force_unlock'):\n"
        "    __import__('batchimage.commands.' + name)\n"
        "assert not [m for m in sys.modules if m.startswith('azure')], 'azure imported'\n"
        "assert 'rich' not in sys.modules and 'pydantic' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=child_env()
    )
    assert result.returncode == 0, result.stderr


def test_status_does_not_show_a_killed_run_as_running(spec: Path, tmp_path: Path) -> None:
    state = tmp_path / "killed.json"
    args = [str(SCRIPT), str(tmp_path / "world.json"), str(state), "--yes", "--name", "quickstart"]
    run = subprocess.Popen(
        [sys.executable, *args, "--behaviour", json.dumps({"a": {"wait_forever": True}})],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=child_env(),
    )
    try:
        wait_for_event(run, "step_waiting", "a")
        alive = batchimage("status", str(spec), "--state", str(state))
        assert "apply running (started " in alive.stdout and f"pid {run.pid} on" in alive.stdout
        run.send_signal(signal.SIGKILL)
        run.wait()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    status = batchimage("status", str(spec), "--state", str(state))
    assert status.returncode == 0, status.stderr
    assert "apply running" not in status.stdout
    assert "apply did not finish" in status.stdout
    assert (
        f"pid {run.pid} on" in status.stdout and "is gone; the next apply resumes" in status.stdout
    )
    doc = json.loads(
        batchimage("status", str(spec), "--state", str(state), "--format", "json").stdout
    )
    assert [(r["result"], r["process"]) for r in doc["runs"]] == [("running", "gone")]
    assert doc["locked_by"] is None
