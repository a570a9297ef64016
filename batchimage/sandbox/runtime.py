"""Find or start the sandbox for the calling process.

One sandbox per user, wherever a command runs: its folder (state, TLS, identity, Azurite's
data, connection file) is `$BATCHIMAGE_SANDBOX_DIR`, else `$XDG_STATE_HOME/batchimage/sandbox`
(`~/.local/state/batchimage/sandbox` by default); see `default_folder()`.

`ensure_running(folder)` joins the live sandbox of `folder` as one of its owners (it then
runs as long as this process does); when none runs, or the one there is stopping (it waits
for it to end), it installs Azurite if needed (in the foreground, before any health wait),
says which folder it starts a sandbox in (through `say`, else on stderr), and starts
`batchimage sandbox serve` as a child that lives as long as its owners
(`batchimage.sandbox.owners`). `start(folder)` always starts one and returns a handle to
stop it.
"""

from __future__ import annotations

import atexit
import contextlib
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

import filelock

from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.azurite import find_azurite
from batchimage.sandbox.connection import Connection, read_connection
from batchimage.sandbox.errors import SandboxError

ALREADY_SERVING = 75  # exit code of `serve` when another process serves the folder
LOCK_FILE = "serve.lock"  # held by the process serving the folder, while it starts and stops
PID_FILE = "serve.pid"  # that process's id
START_LOCK = "start.lock"  # held by the one process starting a sandbox for the folder


class AlreadyServing(SandboxError):
    """Another process serves the folder (or is starting or stopping its sandbox)."""


def default_folder() -> Path:
    """`$BATCHIMAGE_SANDBOX_DIR`, else the user's `$XDG_STATE_HOME/batchimage/sandbox`
    (`~/.local/state/batchimage/sandbox`): the same folder from any working directory."""
    explicit = os.environ.get("BATCHIMAGE_SANDBOX_DIR")
    if explicit:
        return Path(explicit).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "batchimage" / "sandbox"


def serving(folder: Path) -> bool:
    """Whether a process holds `folder`'s serve lock (serves it, or starts or stops doing so)."""
    lock = filelock.FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return True
    lock.release()
    return False


def server_pid(folder: Path) -> int:
    """The id of the process that serves `folder` (0 when unknown)."""
    try:
        return int((folder / PID_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


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

    def release(self, timeout: float = 15.0) -> None:
        """This process no longer needs the sandbox: it stops now (waited for) unless another
        process still uses it, which it then serves until that one ends."""
        if self._stopped or self.process.poll() is not None:
            return
        try:
            stopping = SandboxAdmin(self.connection).remove_owner(os.getpid())
        except SandboxError:
            self.stop(timeout)  # it does not answer: nobody can use it
            return
        if not stopping:
            return
        try:  # it stops by itself (a signal now could cut its saving of the world short)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(timeout)
        self._stopped = True

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
    """Start the sandbox (`python -m batchimage.sandbox`) for `folder` and wait until it is
    healthy.

    Azurite is installed first if needed, in the foreground: `timeout` (the health limit)
    counts from the start of `serve`, never the install. `tied`: the sandbox stops by itself
    once this process (and every process that reused it) is gone, even if killed. Raises
    AlreadyServing when another process serves the folder.
    """
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    find_azurite()
    log_path = folder / "serve.log"
    cmd = [sys.executable, "-m", "batchimage.sandbox", "--folder", str(folder)]
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
            if proc.returncode == ALREADY_SERVING:
                raise AlreadyServing(f"another process already serves the sandbox in {folder}")
            raise SandboxError(
                f"the sandbox exited with code {proc.returncode}:\n{_tail(log_path)}"
            )
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise SandboxError(
        f"the sandbox did not become healthy within {timeout:.0f} s; the end of {log_path}:\n"
        f"{_tail(log_path)}"
    )


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-1500:].rstrip()


def ensure_running(
    folder: Path | None = None,
    timeout: float = 30.0,
    say: Callable[[str], None] | None = None,
) -> Connection:
    """A live sandbox for `folder` (default: `default_folder()`) that runs at least as long
    as this process: the one already running, or one started for this process (`say`
    hears what takes time: waiting for another sandbox, starting one; default: stderr).

    One process starts it at a time (`start.lock`); the others then join that one. A sandbox
    that is stopping (e.g. its starter was killed) is waited for, then replaced; one whose
    serving process neither answers nor stops within `timeout` is reported, with its pid.
    """
    folder = (folder or default_folder()).expanduser().resolve()
    conn = _join(folder)
    if conn is not None:
        return conn
    folder.mkdir(parents=True, exist_ok=True)
    find_azurite()  # a first install happens here, in the foreground, before any wait
    starting = filelock.FileLock(str(folder / START_LOCK))
    try:
        starting.acquire(timeout=2 * timeout + 10)  # the holder waits and starts, each bounded
    except filelock.Timeout:
        raise SandboxError(
            f"another command has been starting the sandbox in {folder} for over "
            f"{2 * timeout + 10:.0f} s; see {folder / 'serve.log'}"
        ) from None
    try:
        return _join(folder) or _replace(folder, timeout, say or _to_stderr)
    finally:
        starting.release()


def _replace(folder: Path, timeout: float, say: Callable[[str], None]) -> Connection:
    """Start a sandbox for `folder` once the one there (if any) has stopped."""
    deadline = time.monotonic() + timeout
    said = False
    while serving(folder):
        conn = _join(folder)  # it may be a `serve` started by hand, still starting
        if conn is not None:
            return conn
        pid = server_pid(folder)
        if time.monotonic() > deadline:
            who = f"process {pid}" if pid else "another process"
            raise SandboxError(
                f"the sandbox in {folder} is held by {who}, which neither answers nor stops; "
                f"stop it{f' (kill {pid})' if pid else ''} and run the command again, or set "
                "BATCHIMAGE_SANDBOX_DIR to use another folder"
            )
        if not said:
            said = True
            say(f"waiting for the sandbox in {folder} (process {pid or '?'}) to start or stop")
        time.sleep(0.1)
    say(f"starting the sandbox (a local Azure) in {folder}; it stops when no command uses it")
    try:
        child = start(folder, timeout=timeout)
    except AlreadyServing:  # a `serve` by hand took the folder meanwhile: use that one
        return _replace(folder, timeout, say)
    atexit.register(child.release)
    return child.connection


def _join(folder: Path) -> Connection | None:
    """The live sandbox of `folder`, now also owned by this process; None if there is none
    or it is stopping."""
    conn = running(folder)
    if conn is None or not SandboxAdmin(conn).add_owner(os.getpid()):
        return None
    atexit.register(_leave, conn)
    return conn


def _leave(conn: Connection) -> None:
    """At exit: this process no longer needs the sandbox it joined (nothing to say if the
    sandbox and its folder are gone already)."""
    with contextlib.suppress(SandboxError, OSError):
        SandboxAdmin(conn).remove_owner(os.getpid())


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
