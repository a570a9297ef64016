"""Damaged and odd state files: a document nested too deeply, a state or lock file that is a
named pipe. status, plan and apply stop with a clear StateError (exit 1), never a traceback
or a hang, and leave the file as it was."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from batchimage.cli import main
from batchimage.core.errors import StateError
from batchimage.state import MAX_DEPTH, LockHolder
from batchimage.state.local import LocalStateStore
from tests.engine.procs import run_python
from tests.spec.conftest import MINIMAL

SPEC = MINIMAL.replace("subscription: 00000000-0000-4000-8000-000000000001\n", "cloud: sandbox\n")
COMMANDS = {
    "status": ["status"],
    "plan": ["plan", "--offline"],
    "apply": ["apply", "--yes"],
}


def nested_state(depth: int) -> str:
    """A state document of pipeline `demo` whose lists and maps nest `depth` levels deep."""
    # root map, steps, the step, outputs, then a list per further level
    lists = depth - 4
    inner = "[" * lists + "]" * lists
    return (
        '{"schema_version": 1, "pipeline": "demo", "steps": '
        '{"a": {"kind": "x", "outputs": {"k": ' + inner + "}}}}"
    )


def run(*argv: str) -> tuple[Any, str]:
    """The CLI in-process: exit code and everything it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(list(argv))
        except SystemExit as stop:
            return stop.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_the_deepest_allowed_state_is_read(spec: Path, tmp_path: Path) -> None:
    state = tmp_path / "ok.json"
    state.write_text(nested_state(MAX_DEPTH))
    code, printed = run("status", str(spec), "--state", str(state))
    assert code == 0, printed
    assert "demo: state" in printed


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 100_000])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_deep_state_is_damaged_and_left_alone(
    spec: Path, tmp_path: Path, command: str, depth: int
) -> None:
    state = tmp_path / "deep.json"
    state.write_text(nested_state(depth))
    before = state.read_bytes(), state.stat().st_mtime_ns
    code, printed = run(*COMMANDS[command], str(spec), "--state", str(state))
    assert code == 1, printed
    assert "Traceback" not in printed
    assert f"error: state {state} is unreadable: nested " in printed
    assert f"{MAX_DEPTH}" in printed
    assert "batchimage did not change the file" in printed
    assert (state.read_bytes(), state.stat().st_mtime_ns) == before
    assert not state.with_name("deep.json.bak").exists()


def test_deep_state_as_a_subprocess(spec: Path, tmp_path: Path) -> None:
    state = tmp_path / "deep.json"
    state.write_text(nested_state(50_000))
    done = run_python("-m", "batchimage", "status", str(spec), "--state", str(state))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: state {state} is unreadable: nested deeper than")


def test_a_state_file_that_became_a_fifo_is_refused(tmp_path: Path) -> None:
    """Checked again when read, after the spec's check: reading a pipe would wait forever."""
    state = tmp_path / "demo.json"
    os.mkfifo(state)
    store = LocalStateStore(state)
    with pytest.raises(StateError, match=r"demo\.json is not a regular file \(a named pipe"):
        store.read()
    assert state.is_fifo()


def test_a_lock_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "demo.json"
    os.mkfifo(tmp_path / "demo.json.lock")
    store = LocalStateStore(state)
    with pytest.raises(StateError, match=r"demo\.json\.lock is not a regular file"):
        store.holder()
    with pytest.raises(StateError, match=r"demo\.json\.lock is not a regular file"):
        store.lock(LockHolder(command="apply"))
    assert (tmp_path / "demo.json.lock").is_fifo()
    assert not state.exists()


def test_state_that_is_a_folder_is_refused_when_read(tmp_path: Path) -> None:
    (tmp_path / "demo.json").mkdir()
    with pytest.raises(StateError, match="is not a regular file"):
        LocalStateStore(tmp_path / "demo.json").read()
    assert sorted(os.listdir(tmp_path)) == ["demo.json"]
