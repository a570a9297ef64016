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


def run_python(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """`python *args` as a child of this checkout (`child_env`), its output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


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


def command_lines() -> dict[int, tuple[int, str]]:
    """Every process: id -> (parent id, whole command line). Read from /proc, whose
    cmdline is never cut short (`ps` cuts it at 80 columns when its output is no terminal);
    from `ps -ww` where there is no /proc."""
    proc = Path("/proc")
    if not proc.is_dir():
        ps = subprocess.run(
            ["ps", "-A", "-ww", "-o", "pid=,ppid=,args="], capture_output=True, text=True
        )
        found = {}
        for line in ps.stdout.splitlines():
            pid, parent, args = [*line.split(None, 2), ""][:3]
            found[int(pid)] = (int(parent), args)
        return found
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # after "pid (comm) state"
        found[int(entry.name)] = (parent, raw.replace(b"\0", b" ").decode(errors="replace"))
    return found
