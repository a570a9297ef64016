"""Helpers for tests that run real subprocesses of this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process that imports this checkout's batchimage."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def start_ready(script: Path, *args: str, ready: str = "locked") -> subprocess.Popen[str]:
    """Start `python script args...` and wait for the line `ready` on its stdout."""
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=child_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == ready, f"{script.name} said {line!r}, not {ready!r}"
    return proc
