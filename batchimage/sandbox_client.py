"""The tool's one door to the sandbox (`batchimage.sandbox`, a program of its own in the same
package): find, join or start it, read its connection, provision, reset and serve it.

Every call turns the sandbox's own SandboxError into the tool's `batchimage.core.errors.
SandboxError` (same message), so the tool handles it and exits as with any other failure.
Nothing else of the tool imports `batchimage.sandbox`; the import-linter contracts in
pyproject.toml hold it so. The sandbox's machinery is imported on first use (a command that
never touches the sandbox does not load it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchimage.core.errors import SandboxError
from batchimage.sandbox import errors as sandbox_errors
from batchimage.sandbox.connection import Connection

__all__ = [
    "Connection",
    "add_subscription",
    "default_folder",
    "ensure_running",
    "provision",
    "reset",
    "running",
    "serve",
    "translated",
]


@contextmanager
def translated() -> Iterator[None]:
    """Run sandbox calls; a sandbox SandboxError leaves as the tool's, with its message."""
    try:
        yield
    except sandbox_errors.SandboxError as exc:
        raise SandboxError(str(exc)) from exc


def default_folder() -> Path:
    """The user's sandbox folder: `$BATCHIMAGE_SANDBOX_DIR`, else under `$XDG_STATE_HOME`."""
    from batchimage.sandbox.runtime import default_folder as folder

    return folder()


def ensure_running(
    folder: Path | None = None, say: Callable[[str], None] | None = None
) -> Connection:
    """A live sandbox for `folder` (default: the user's) that runs at least as long as this
    process: the one running, joined, or one started (`say` hears what takes time)."""
    from batchimage.sandbox import runtime

    with translated():
        return runtime.ensure_running(folder, say=say)


def running(folder: Path) -> Connection | None:
    """The connection of a live sandbox serving `folder`, else None."""
    from batchimage.sandbox import runtime

    with translated():
        return runtime.running(folder)


def reset(folder: Path) -> Connection | None:
    """Start `folder`'s world afresh: the serving sandbox at once (its connection returned),
    else the stored world is deleted for the next start (None)."""
    from batchimage.sandbox.reset import reset as reset_folder

    with translated():
        return reset_folder(folder)


def add_subscription(conn: Connection, subscription_id: str, registered: bool = True) -> None:
    """Make another subscription known to the sandbox (its providers registered or not)."""
    from batchimage.sandbox.admin import SandboxAdmin

    with translated():
        SandboxAdmin(conn).add_subscription(subscription_id, registered=registered)


def provision(
    conn: Connection, subscription_id: str, location: str, items: list[dict[str, Any]]
) -> list[str]:
    """Make a rehearsal's existing prerequisites exist (idempotent); returns their ids."""
    from batchimage.sandbox.admin import SandboxAdmin

    with translated():
        return SandboxAdmin(conn).provision(subscription_id, location, items)


def serve(
    folder: Path,
    *,
    port: int = 0,
    time_scale: float | None = None,
    exit_with: int = 0,
    say: Callable[[str], None],
    complain: Callable[[str], None],
) -> int:
    """Serve `folder` in this process until interrupted; the exit code (75 when another
    process serves it). See `batchimage.sandbox.serve`."""
    from batchimage.sandbox.serve import serve as serve_folder

    with translated():
        return serve_folder(
            folder,
            port=port,
            time_scale=time_scale,
            exit_with=exit_with,
            say=say,
            complain=complain,
        )
