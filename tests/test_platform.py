"""Where batchimage cannot run (Windows: no `fcntl`, no signal masks), every command says
so and where it runs instead: exit 1, never a traceback, nothing written."""

from __future__ import annotations

import contextlib
import io
import signal
from pathlib import Path

import pytest

from batchimage.cli import main
from tests.engine.procs import run_python

REPO = Path(__file__).resolve().parents[1]


def test_without_fcntl_a_command_says_where_batchimage_runs(tmp_path: Path) -> None:
    state = tmp_path / "demo.json"
    spec = REPO / "specs" / "quickstart.yaml"
    no_fcntl = (
        "import sys; sys.modules['fcntl'] = None; from batchimage.cli import main; "
        f"main(['status', {str(spec)!r}, '--state', {str(state)!r}])"
    )
    done = run_python("-c", no_fcntl)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: batchimage runs on Linux and macOS; on Windows, run ")
    assert "This Python has no fcntl" in done.stderr
    assert not state.exists()


def test_without_signal_masks_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(signal, "pthread_sigmask")
    out = io.StringIO()
    with (
        contextlib.redirect_stderr(out),
        contextlib.redirect_stdout(out),
        pytest.raises(SystemExit) as stopped,
    ):
        main(["validate", str(REPO / "specs" / "quickstart.yaml")])
    assert stopped.value.code == 1
    assert "inside WSL" in out.getvalue()
    assert "This Python has no signal.pthread_sigmask" in out.getvalue()
