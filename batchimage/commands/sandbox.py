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
    from batchimage.sandbox_client import default_folder

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
    from batchimage import sandbox_client

    def say(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    def complain(line: str) -> None:
        click.echo(line, err=True)

    return sandbox_client.serve(
        _folder(folder),
        port=port,
        time_scale=time_scale,
        exit_with=exit_with,
        say=say,
        complain=complain,
    )


@command.command("status")
@click.option("--folder", type=click.Path(file_okay=False), help=FOLDER_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the connection as JSON.")
def status(folder: str | None, as_json: bool) -> int:
    """Say whether the sandbox runs, and where (exit 0 running, 1 not running)."""
    from batchimage.sandbox_client import running

    path = _folder(folder)
    conn = running(path)
    alive = conn is not None
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
    from batchimage.sandbox_client import reset as reset_folder

    path = _folder(folder)
    conn = reset_folder(path)
    if conn is not None:
        click.echo(f"sandbox reset (still serving at {conn.arm_endpoint})")
    else:
        click.echo(f"sandbox reset: the next start begins from the seeded world (folder {path})")
    return 0


@command.command("env")
@click.option("--folder", type=click.Path(file_okay=False), help=FOLDER_HELP)
def env(folder: str | None) -> int:
    """Print shell exports for Azure SDK clients (use: eval "$(batchimage sandbox env)")."""
    from batchimage.core.errors import SandboxError
    from batchimage.sandbox_client import running

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
