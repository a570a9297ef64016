"""Serve a sandbox folder in this process until interrupted (`batchimage sandbox serve`):
Azurite installed first, one process per folder (its serve lock and pid file)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import filelock

from batchimage.sandbox.azurite import find_azurite
from batchimage.sandbox.config import load_config
from batchimage.sandbox.errors import SandboxError
from batchimage.sandbox.runtime import ALREADY_SERVING, LOCK_FILE, PID_FILE
from batchimage.sandbox.server import SandboxServer


def serve(
    folder: Path,
    *,
    port: int = 0,
    time_scale: float | None = None,
    exit_with: int = 0,
    say: Callable[[str], None],
    complain: Callable[[str], None],
) -> int:
    """Serve `folder` until Ctrl-C / SIGTERM (or, with `exit_with`, until that process and
    every process that reused the sandbox are gone); `say` hears where it serves and that it
    stopped, `complain` that another process serves the folder (then ALREADY_SERVING is
    returned, else 0)."""
    find_azurite()  # installs it on first use, here in the foreground
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / LOCK_FILE))
    try:  # a moment's wait: `ensure_running` may be looking whether the lock is free
        lock.acquire(timeout=0.5)
    except filelock.Timeout:
        complain(f"error: another process already serves the sandbox in {folder}")
        return ALREADY_SERVING
    try:
        (folder / PID_FILE).write_text(f"{os.getpid()}\n")
        config = load_config(folder)
        if time_scale is not None:
            if time_scale < 0:
                raise SandboxError("--time-scale must be 0 or more")
            config.time_scale = time_scale
        server = SandboxServer(folder, port=port, config=config)

        def ready(conn: object) -> None:
            say(f"sandbox serving at {server.world.base_url} (folder {server.folder})")
            say(
                f"connection file: {server.folder / 'connection.json'}; "
                "`batchimage sandbox env` prints shell exports"
            )

        server.on_ready = ready
        server.run(exit_with)  # returns on Ctrl-C / SIGTERM, after stopping Azurite
        say("sandbox stopped; its state is kept (`batchimage sandbox serve` resumes it)")
    finally:
        (folder / PID_FILE).unlink(missing_ok=True)
        lock.release()
    return 0
