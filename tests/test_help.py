"""Every command and subcommand answers --help (exit 0, usage, its own description)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batchimage.cli import COMMANDS
from tests.engine.procs import REPO, child_env

SANDBOX_SUBCOMMANDS = ("serve", "status", "reset", "env")
EVERY = [[name] for name in COMMANDS] + [["sandbox", sub] for sub in SANDBOX_SUBCOMMANDS]


@pytest.mark.parametrize("args", EVERY, ids=" ".join)
def test_every_command_has_help(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "batchimage", *args, "--help"],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: batchimage {' '.join(args)}")
    assert "--help" in done.stdout
    assert "Traceback" not in done.stderr
