"""The tool's door to the sandbox (batchimage.sandbox_client) hands the sandbox's own
SandboxError on as the tool's, with the same message, so the CLI reports it as ever: one
line, exit 1, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from batchimage import sandbox_client
from batchimage.core import errors
from batchimage.sandbox import errors as sandbox_errors
from tests.engine.procs import REPO, child_env


def _broken_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "sb"
    folder.mkdir()
    (folder / "connection.json").write_text("{not json")
    return folder


def test_a_sandbox_error_leaves_the_door_as_the_tools(tmp_path: Path) -> None:
    folder = _broken_folder(tmp_path)
    with pytest.raises(errors.SandboxError, match=r"connection file .* is unreadable") as err:
        sandbox_client.running(folder)
    assert isinstance(err.value.__cause__, sandbox_errors.SandboxError)
    assert str(err.value) == str(err.value.__cause__)
    assert err.value.exit_code == errors.EXIT_FAILED


def test_the_cli_reports_it_in_one_line_with_exit_1(tmp_path: Path) -> None:
    folder = _broken_folder(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "batchimage", "sandbox", "status", "--folder", str(folder)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=child_env(),
        timeout=60,
    )
    assert done.returncode == 1
    assert "is unreadable" in done.stderr
    assert "Traceback" not in done.stderr
