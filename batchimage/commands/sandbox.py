"""`batchimage sandbox serve | status | reset | env`: run and manage the local Azure."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

FOLDER_HELP = (
    "Sandbox folder (state, TLS, connection file); default $BATCHIMAGE_SANDBOX_DIR, else "
    "~/.local/state/batchimage/sandbox (under $XDG_STATE_HOME when set), from any directory."
)


def _folder(value: str | None) -> Path:
    from batchimage.sandbox.runtime import default_folder

    return Path(value) if value else default_folder()


@click.group("sandbox")
def command() -> None:
    """Run and manage the sandbox: a local Azure (ARM + Batch over HTTPS, Azurite for blobs).

    `serve` runs it in the foreground and writes <folder>/connection.json; `env` prints
    shell exports for other Azure SDK clients; `status` tells whether it runs; `reset`
    starts the world afresh.
    """


@command.command("serve")
@click.option("--folder", type=click.Path(file_okay=False), help=FOLDER_HELP)
@click.option(
    "--port", type=int, default=0, help="HTTPS port on 127.0.0.1 (default: last one, or any free)."
)
@click.option(
    "--time-scale",
    type=float,
    default=None,
    help="Wall seconds per simulated second (default 0.015; tests use 0.001).",
)
@click.option(
    "--exit-with",
    type=int,
    default=0,
    hidden=True,
    help="Stop once this process, and every process that reused the sandbox, is gone "
    "(used when started for a caller).",
)
def serve(folder: str | None, port: int, time_scale: float | None, exit_with: int) -> int:
    """Serve the sandbox until interrupted (Ctrl-C)."""
    import os

    import filelock

    from batchimage.errors import SandboxError
    from batchimage.sandbox.azurite import find_azurite
    from batchimage.sandbox.config import load_config
    from batchimage.sandbox.runtime import ALREADY_SERVING, LOCK_FILE, PID_FILE
    from batchimage.sandbox.server import SandboxServer

    find_azurite()  # installs it on first use, here in the foreground
    path = _folder(folder)
    path.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path / LOCK_FILE))
    try:  # a moment's wait: `ensure_running` may be looking whether the lock is free
        lock.acquire(timeout=0.5)
    except filelock.Timeout:
        click.echo(f"error: another process already serves the sandbox in {path}", err=True)
        return ALREADY_SERVING
    try:
        (path / PID_FILE).write_text(f"{os.getpid()}\n")
        config = load_config(path)
        if time_scale is not None:
            if time_scale < 0:
                raise SandboxError("--time-scale must be 0 or more")
            config.time_scale = time_scale
        server = SandboxServer(path, port=port, config=config)

        def ready(conn: object) -> None:
            click.echo(f"sandbox serving at {server.world.base_url} (folder {server.folder})")
            click.echo(
                f"connection file: {server.folder / 'connection.json'}; "
                "`batchimage sandbox env` prints shell exports"
            )
            sys.stdout.flush()

        server.on_ready = ready
        server.run(exit_with)  # returns on Ctrl-C / SIGTERM, after stopping Azurite
        click.echo("sandbox stopped; its state is kept (`batchimage sandbox serve` resumes it)")
    finally:
        (path / PID_FILE).unlink(missing_ok=True)
        lock.release()
    return 0


@command.command("status")
@click.option("--folder", type=click.Path(file_okay=False), help=FOLDER_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the connection as JSON.")
def status(folder: str | None, as_json: bool) -> int:
    """Say whether the sandbox runs, and where (exit 0 running, 1 not running)."""
    from batchimage.sandbox.connection import read_connection
    from batchimage.sandbox.runtime import healthy

    path = _folder(folder)
    conn = read_connection(path)
    alive = conn is not None and healthy(conn)
    if as_json:
        data = {"running": alive, "folder": str(path.resolve())}
        if conn is not None and alive:
            data.update({k: v for k, v in conn.to_json().items() if k != "client_secret"})
        click.echo(json.dumps(data, indent=2))
    elif alive and conn is not None:
        click.echo(
            f"running: pid {conn.pid}, ARM {conn.arm_endpoint}, blobs {conn.blob_endpoint_root}"
        )
        click.echo(
            f"folder {conn.folder}; subscription {conn.subscription_id}, location "
            f"{conn.location}, group {conn.resource_group}"
        )
    else:
        click.echo(f"not running (folder {path}); start it with `batchimage sandbox serve`")
    return 0 if alive else 1


@command.command("reset")
@click.option("--folder", type=click.Path(file_okay=False), help=FOLDER_HELP)
def reset(folder: str | None) -> int:
    """Forget every resource and start from the seeded world (identity and TLS are kept)."""
    import shutil

    from batchimage.sandbox.admin import SandboxAdmin
    from batchimage.sandbox.runtime import running

    path = _folder(folder)
    conn = running(path)
    if conn is not None:
        SandboxAdmin(conn).reset()
        click.echo(f"sandbox reset (still serving at {conn.arm_endpoint})")
        return 0
    (path / "state.json").unlink(missing_ok=True)
    shutil.rmtree(path / "azurite", ignore_errors=True)
    click.echo(f"sandbox reset: the next start begins from the seeded world (folder {path})")
    return 0


@command.command("env")
@click.option("--folder", type=click.Path(file_okay=False), help=FOLDER_HELP)
def env(folder: str | None) -> int:
    """Print shell exports for Azure SDK clients (use: eval "$(batchimage sandbox env)")."""
    from batchimage.errors import SandboxError
    from batchimage.sandbox.runtime import running

    path = _folder(folder)
    conn = running(path)
    if conn is None:
        raise SandboxError(
            f"the sandbox is not running (folder {path}); start it with "
            "`batchimage sandbox serve` in another terminal"
        )
    for key, value in conn.env().items():
        click.echo(f"export {key}={shlex.quote(value)}")
    return 0
