"""Find or start a sandbox for the calling process.

`ensure_running(folder)` reuses a live sandbox (connection file + health check) or starts
`batchimage sandbox serve` as a child process that lives as long as the caller (stopped
at exit), saying so first through `say` (it takes seconds). `start(folder)` always starts
one and returns a handle to stop it.
"""

from __future__ import annotations

import atexit
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from batchimage.errors import SandboxError
from batchimage.sandbox.connection import Connection, read_connection

ALREADY_SERVING = 75  # exit code of `serve` when another process serves the folder


def default_folder() -> Path:
    """`$BATCHIMAGE_SANDBOX_DIR` or `.batchimage/sandbox` under the current directory."""
    return Path(os.environ.get("BATCHIMAGE_SANDBOX_DIR") or ".batchimage/sandbox")


def healthy(conn: Connection, timeout: float = 2.0) -> bool:
    """True if the sandbox in `conn` answers its health check as the process it names."""
    if not conn.pid:
        return False
    context = ssl.create_default_context(cafile=conn.ca_bundle)
    try:
        with urllib.request.urlopen(
            f"{conn.arm_endpoint}/_sandbox/health", timeout=timeout, context=context
        ) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    return bool(data.get("status") == "ok" and data.get("pid") == conn.pid)


def running(folder: Path) -> Connection | None:
    """The connection of a live sandbox serving `folder`, else None."""
    conn = read_connection(folder)
    return conn if conn is not None and healthy(conn) else None


@dataclass
class SandboxProcess:
    """A sandbox child process started by `start()`."""

    process: subprocess.Popen[bytes]
    connection: Connection
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the sandbox (SIGTERM, then SIGKILL after `timeout`)."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    folder: Path,
    *,
    port: int = 0,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    tied: bool = True,
) -> SandboxProcess:
    """Start `batchimage sandbox serve` for `folder` and wait until it is healthy.

    `tied`: the sandbox stops by itself once this process is gone, even if it is killed.
    """
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "serve.log"
    cmd = [sys.executable, "-m", "batchimage", "sandbox", "serve", "--folder", str(folder)]
    if port:
        cmd += ["--port", str(port)]
    if tied:
        cmd += ["--exit-with", str(os.getpid())]
    child_env = {**os.environ, **(env or {})}
    # the child imports the same batchimage as this process, installed or not
    root = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, child_env.get("PYTHONPATH")) if p)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = read_connection(folder)
        if conn is not None and conn.pid == proc.pid and healthy(conn, timeout=1.0):
            return SandboxProcess(proc, conn, log_path)
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            if proc.returncode == ALREADY_SERVING:
                raise SandboxError(f"another process already serves the sandbox in {folder}")
            raise SandboxError(f"the sandbox exited with code {proc.returncode}:\n{tail}")
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise SandboxError(f"the sandbox did not become healthy within {timeout:.0f} s; see {log_path}")


def ensure_running(
    folder: Path | None = None,
    timeout: float = 30.0,
    say: Callable[[str], None] | None = None,
) -> Connection:
    """A live sandbox for `folder`: the one already running, or one started for this process
    (`say` is told before it starts: "starting the sandbox…")."""
    folder = (folder or default_folder()).resolve()
    conn = running(folder)
    if conn is not None:
        return conn
    if say is not None:
        say(f"starting the sandbox (the local Azure) in {_shown(folder)}…")
    try:
        child = start(folder, timeout=timeout)
    except SandboxError:
        conn = _wait_for_other(folder, timeout)
        if conn is None:
            raise
        return conn
    atexit.register(child.stop)
    return child.connection


def _shown(folder: Path) -> str:
    """`folder` as a person reads it: relative to the current directory when inside it."""
    try:
        return str(folder.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def _wait_for_other(folder: Path, timeout: float) -> Connection | None:
    """When a concurrent starter won the race, wait for its sandbox to answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = running(folder)
        if conn is not None:
            return conn
        time.sleep(0.1)
    return None
